"""``python -m fmteach.finetune ...`` (also under ``torchrun`` and ``accelerate launch``)."""

from .loop import main

if __name__ == "__main__":
    main()
