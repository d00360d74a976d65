"""A tiny CLIP (fmteach.applications.clip, lesson 12): the contrastive loss against a reference
written out with explicit loops (and against transformers' CLIP loss), the captions and their
tokenizer, the model's pieces, zero-shot classification, retrieval, and a seeded training run
whose loss falls. Seconds."""

import math

import pytest
import torch
import torch.nn.functional as F

from fmteach.applications import clip, vit
from fmteach.applications.training import batches, fit

SMALL = clip.CLIPConfig(embed_dim=16, vision=vit.ViTConfig(hidden_size=32, num_layers=1, num_heads=2,
                                                           intermediate_size=64, dropout=0.0),
                        text_hidden_size=32, text_layers=1, text_heads=2, text_intermediate_size=64, dropout=0.0)


def small_clip(seed: int = 0) -> clip.TinyCLIP:
    torch.manual_seed(seed)
    return clip.TinyCLIP(clip.CaptionTokenizer.for_digits(), SMALL)


def reference_clip_loss(image_emb, text_emb, scale):
    """CLIP's loss spelled out: for each image, -log of the softmax over all captions at its own
    caption; for each caption, the same over all images; the mean of the two means."""
    image_emb = image_emb / image_emb.norm(dim=1, keepdim=True)
    text_emb = text_emb / text_emb.norm(dim=1, keepdim=True)
    B = len(image_emb)
    image_to_text, text_to_image = [], []
    for i in range(B):
        row = torch.stack([scale * torch.dot(image_emb[i], text_emb[j]) for j in range(B)])
        image_to_text.append(-torch.log_softmax(row, dim=0)[i])
    for j in range(B):
        column = torch.stack([scale * torch.dot(image_emb[i], text_emb[j]) for i in range(B)])
        text_to_image.append(-torch.log_softmax(column, dim=0)[j])
    return (torch.stack(image_to_text).mean() + torch.stack(text_to_image).mean()) / 2


def named_digit(caption: str) -> int:
    """The digit a caption names, as a word ("seven") or a numeral ("7")."""
    words = caption.split()
    return next(d for d, word in enumerate(clip.NUMBER_WORDS) if word in words or str(d) in words)


# ---------------------------------------------------------------------------------------------- the loss

@pytest.mark.parametrize("B, E, scale", [(1, 4, 1.0), (5, 8, 14.3), (7, 3, 100.0)])
def test_clip_loss_equals_the_explicit_reference_and_transformers(B, E, scale):
    from transformers.models.clip.modeling_clip import image_text_contrastive_loss

    generator = torch.Generator().manual_seed(B)
    image_emb = torch.randn(B, E, generator=generator, dtype=torch.float64)
    text_emb = torch.randn(B, E, generator=generator, dtype=torch.float64)
    loss = clip.clip_loss(image_emb, text_emb, scale)
    torch.testing.assert_close(loss, reference_clip_loss(image_emb, text_emb, scale), rtol=0, atol=1e-12)
    logits = clip.clip_logits(image_emb, text_emb, scale)
    torch.testing.assert_close(loss, image_text_contrastive_loss(logits.T), rtol=0, atol=1e-12)  # HF's takes text rows
    torch.testing.assert_close(clip.clip_loss(text_emb, image_emb, scale), loss, rtol=0, atol=1e-12)  # symmetric


def test_clip_loss_rewards_matching_pairs_and_ignores_the_embeddings_length():
    generator = torch.Generator().manual_seed(0)
    emb = torch.randn(6, 8, generator=generator, dtype=torch.float64)
    matched = clip.clip_loss(emb, emb + 0.01 * torch.randn(6, 8, generator=generator, dtype=torch.float64), 50.0)
    shuffled = clip.clip_loss(emb, emb[[1, 2, 3, 4, 5, 0]], 50.0)
    assert matched < 0.05 < math.log(6) < shuffled
    torch.testing.assert_close(clip.clip_loss(3 * emb, emb * 0.5, 50.0), clip.clip_loss(emb, emb, 50.0))  # cosine
    same = torch.ones(4, 3)  # nothing to tell apart: chance, log(B)
    torch.testing.assert_close(clip.clip_loss(same, same, 10.0), torch.tensor(math.log(4)))


# ---------------------------------------------------------------------------------------------- captions

def test_captions_and_prompts():
    assert [clip.caption(7, t) for t in clip.CAPTION_TEMPLATES] == [
        "a handwritten seven", "the digit 7", "a photo of the number seven", "the number seven written by hand", "7"]
    assert clip.class_prompts("{digit}") == [str(d) for d in range(10)]
    labels = torch.arange(100) % 10
    captions = clip.digit_captions(labels, seed=1)
    assert captions == clip.digit_captions(labels, seed=1) != clip.digit_captions(labels, seed=2)
    assert [named_digit(c) for c in captions] == labels.tolist()
    drawn = {t for t in clip.CAPTION_TEMPLATES for c, y in zip(captions, labels.tolist()) if c == clip.caption(y, t)}
    assert drawn == set(clip.CAPTION_TEMPLATES)  # every phrasing drawn
    assert clip.digit_captions([4, 2], ["{word}!"]) == ["four!", "two!"]


def test_tokenizer_puts_cls_first_pads_and_marks_unknown_words():
    tokenizer = clip.CaptionTokenizer.for_digits()
    assert tokenizer.vocab[:3] == ["[PAD]", "[CLS]", "[UNK]"] and "seven" in tokenizer.vocab and "7" in tokenizer.vocab
    input_ids, attention_mask = tokenizer(["a handwritten seven", "7", "a Blue seven"])
    assert input_ids.shape == attention_mask.shape == (3, 8) and input_ids.dtype == torch.long
    assert input_ids[0, :4].tolist() == [1, tokenizer.index["a"], tokenizer.index["handwritten"], tokenizer.index["seven"]]
    assert attention_mask.sum(1).tolist() == [4, 2, 4] and input_ids[1, 2:].eq(0).all()
    assert input_ids[2, 2] == clip.CaptionTokenizer.UNK  # "blue" was never seen
    assert len(tokenizer) == len(set(tokenizer.vocab))


# ---------------------------------------------------------------------------------------------- the model

def test_tiny_clip_reuses_the_vit_and_starts_at_clips_temperature():
    model = small_clip()
    assert isinstance(model.vision, vit.TinyViT) and model.vision.head.out_features == SMALL.embed_dim
    torch.testing.assert_close(model.scale, torch.tensor(1 / 0.07))
    images = torch.rand(4, 8, 8)
    input_ids, attention_mask = model.tokenizer(clip.class_prompts("a handwritten {word}")[:4])
    out = model(images, input_ids, attention_mask)
    assert out.logits_per_image.shape == (4, 4) and torch.equal(out.logits_per_text, out.logits_per_image.T)
    torch.testing.assert_close(out.image_embeds.norm(dim=1), torch.ones(4))
    expected = clip.clip_loss(model.encode_image(images), model.encode_text(input_ids, attention_mask), model.scale)
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(model.embed_captions(["a handwritten zero"]), model.encode_text(input_ids[:1],
                                                                                             attention_mask[:1]))


def test_the_learned_scale_is_clipped_at_100_as_in_clip():
    model = small_clip()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(500.0))
    assert math.isclose(float(model.scale.detach()), clip.MAX_LOGIT_SCALE, rel_tol=1e-6)
    model.scale.backward()
    assert model.logit_scale.grad == 0  # clipped: no push further up
    model.logit_scale.grad = None
    with torch.no_grad():
        model.logit_scale.fill_(math.log(20.0))
    model.scale.backward()
    assert model.logit_scale.grad > 0


class OneHotStub(torch.nn.Module):
    """Embeds a caption as the one-hot of the digit it names and an image as the one-hot of its
    first pixel: zero-shot classification must then recover the image's digit."""

    def embed_captions(self, captions):
        return F.one_hot(torch.tensor([named_digit(c) for c in captions]), 10).float()

    def encode_image(self, images):
        return F.one_hot(images[:, 0, 0].long(), 10).float()


def test_zero_shot_picks_the_most_similar_prompt_and_averages_several():
    labels = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    images = torch.zeros(8, 8, 8)
    images[:, 0, 0] = labels.float()
    stub = OneHotStub().train()
    assert torch.equal(clip.zero_shot_classify(stub, images, clip.class_prompts("a handwritten {word}")), labels)
    assert stub.training  # its mode is given back
    reversed_prompts = clip.class_prompts("{digit}")[::-1]
    assert torch.equal(clip.zero_shot_classify(stub, images, reversed_prompts), 9 - labels)
    several = [[clip.caption(c, t) for t in clip.CAPTION_TEMPLATES] for c in range(10)]
    assert torch.equal(clip.zero_shot_classify(stub, images, several), labels)
    mixed = [["two"], ["zero", "one", "one"]]  # class 1's average leans to "one"; its first prompt alone does not
    assert clip.zero_shot_classify(stub, images[1:2], mixed).tolist() == [1]
    model = small_clip()
    prompts = clip.class_prompts("the digit {digit}")
    expected = clip.similarity(model.encode_image(images), model.embed_captions(prompts)).argmax(1)
    assert torch.equal(clip.zero_shot_classify(model.eval(), images, prompts), expected)


def test_retrieval_accuracy_counts_the_own_caption_or_the_same_class():
    emb = torch.eye(4)
    assert clip.retrieval_accuracy(emb, emb) == 1.0
    assert clip.retrieval_accuracy(emb, emb[[1, 0, 2, 3]]) == 0.5
    assert clip.retrieval_accuracy(emb, emb[[1, 0, 3, 2]], labels=torch.tensor([0, 0, 1, 1])) == 1.0
    assert clip.retrieval_accuracy(emb, emb[[2, 0, 1, 3]], labels=torch.tensor([0, 0, 1, 1])) == 0.5


def test_a_short_seeded_training_run_lowers_the_loss():
    train_x, train_y, _, _ = vit.load_digits_split()
    tokenizer = clip.CaptionTokenizer.for_digits()
    input_ids, attention_mask = tokenizer(clip.digit_captions(train_y[:128]))
    data = {"images": train_x[:128], "input_ids": input_ids, "attention_mask": attention_mask}
    runs = []
    for _ in range(2):
        model = small_clip()
        runs.append(fit(model, batches(data, 32), clip.clip_batch_loss, steps=200, lr=3e-3))
    losses = runs[0]
    assert losses == runs[1]  # seeded: the same run twice
    assert abs(losses[0] - math.log(32)) < 0.1  # chance at the start: log(batch)
    assert sum(losses[-5:]) / 5 < 0.9 * math.log(32)
    assert not model.training


# ---------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("call, error, message", [
    (lambda: clip.clip_loss(torch.ones(4, 8), torch.ones(3, 8), 1.0), ValueError,
     r"image_emb has shape \(4, 8\) and text_emb \(3, 8\): expected the same shape"),
    (lambda: clip.clip_loss(torch.ones(8), torch.ones(8), 1.0), ValueError, r"image_emb has shape \(8,\): expected"),
    (lambda: clip.clip_loss(torch.ones(2, 8), torch.ones(0, 8), 1.0), ValueError, r"text_emb has shape \(0, 8\)"),
    (lambda: clip.clip_loss(torch.ones(2, 8), torch.ones(2, 8), 0.0), ValueError, "logit_scale must be a positive"),
    (lambda: clip.clip_loss(torch.ones(2, 8), torch.ones(2, 8), torch.tensor(-1.0)), ValueError, "logit_scale"),
    (lambda: clip.similarity(torch.ones(2, 8), torch.ones(3, 4)), ValueError, "expected the same embed_dim"),
    (lambda: clip.retrieval_accuracy(torch.ones(3, 4), torch.ones(2, 4)), ValueError, r"image_emb has shape \(3, 4\)"),
    (lambda: clip.retrieval_accuracy(torch.ones(3, 4), torch.ones(3, 4), torch.ones(2)), ValueError,
     r"labels has shape \(2,\): expected \(3,\)"),
    (lambda: clip.caption(10, "{word}"), ValueError, "label must be a digit 0..9, got 10"),
    (lambda: clip.caption(1, "a digit"), ValueError, "template must be a str with {word} or {digit}"),
    (lambda: clip.digit_captions([1], "{word}"), ValueError, "templates must be a non-empty sequence"),
    (lambda: clip.CaptionTokenizer.for_digits()(["one two three four five six seven eight"]), ValueError,
     "has 8 words: at most max_length - 1 = 7"),
    (lambda: clip.CaptionTokenizer.for_digits()("seven"), TypeError, "captions must be a list of str, got str"),
    (lambda: clip.CaptionTokenizer([], max_length=1), ValueError, "max_length must be at least 2"),
    (lambda: clip.CLIPConfig(embed_dim=0), ValueError, "embed_dim must be a positive int, got 0"),
    (lambda: clip.CLIPConfig(init_temperature=0.001), ValueError, "init_temperature must be a number >= 0.01"),
    (lambda: small_clip()(torch.ones(3, 8, 8), *clip.CaptionTokenizer.for_digits()(["one", "two"])), ValueError,
     r"images has shape \(3, 8, 8\) and input_ids \(2, 8\): expected one caption per image"),
    (lambda: clip.zero_shot_classify(small_clip(), torch.ones(2, 8, 8), "seven"), ValueError,
     "class_prompts must be a non-empty list"),
    (lambda: clip.zero_shot_classify(small_clip(), torch.ones(2, 8, 8), ["one", []]), ValueError,
     r"class_prompts\[1\] must be a str or a non-empty list of str, got \[\]"),
    (lambda: clip.zero_shot_classify(small_clip(), torch.ones(2, 7, 7), ["one", "two"]), ValueError,
     r"images has shape \(2, 7, 7\): expected \(batch, 8, 8\)"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
