"""Lessons 10-11: one architecture, many tasks.

Each module is one task, built on the encoder of lessons 05-06 (:mod:`fmteach.bert`) and the
attention of lessons 01-03 (:mod:`fmteach.attention`):

* :mod:`~fmteach.applications.training` -- one small training loop that every task shares;
* :mod:`~fmteach.applications.nsp`      -- sentence pairs and next-sentence prediction;
* :mod:`~fmteach.applications.tagging`  -- token classification (punctuation restoration, NER);
* :mod:`~fmteach.applications.qa`       -- extractive question answering: start/end logits, spans, strides;
* :mod:`~fmteach.applications.seq2seq`  -- cross-attention and an encoder-decoder (sequence reversal);
* :mod:`~fmteach.applications.vit`      -- images as tokens: a tiny Vision Transformer on 8x8 digits.

Lesson 12 adds two, one the cheap way to adapt such a model, one a model for text and images:

* :mod:`~fmteach.applications.lora`     -- LoRA from scratch (equal to peft's), BitFit, the last k layers, counts;
* :mod:`~fmteach.applications.clip`     -- a tiny CLIP: lesson 11's ViT and a caption encoder, the contrastive
  loss, zero-shot classification by text prompts, retrieval.
"""
