"""``python -m fmteach.finetune ...`` (also under ``torchrun`` and ``accelerate launch``): see :mod:`.cli`."""

from .cli import main

if __name__ == "__main__":
    main()
