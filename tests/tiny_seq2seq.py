"""A tiny MarianMT checkpoint built offline for back-translation tests: a sentencepiece model
trained on a few sentences, a MarianTokenizer over it and a randomly initialised MarianMTModel of
tiny dimensions, saved with ``save_pretrained`` (loaded again through ``from_pretrained``)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

SENTENCES = [
    "the movie was great and the actors were wonderful",
    "the food was cold and the service was slow",
    "a quiet evening by the river with friends",
    "the match ended in a draw after extra time",
    "new chips make the phone faster and cheaper",
    "der film war gut und die schauspieler waren toll",
    "das essen war kalt und der service langsam",
]


def build_tiny_marian(root: Path, seed: int = 0) -> Path:
    """A saved tiny Marian checkpoint under ``root`` (its directory)."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    root.mkdir(parents=True, exist_ok=True)
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 4) + "\n")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(root / "sp"),
                                   vocab_size=60, model_type="unigram", minloglevel=2,
                                   hard_vocab_limit=False)
    processor = spm.SentencePieceProcessor(model_file=str(root / "sp.model"))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    vocab = {"</s>": 0, "<unk>": 1, "<pad>": 2}
    for piece in pieces:
        vocab.setdefault(piece, len(vocab))
    (root / "vocab.json").write_text(json.dumps(vocab))
    source = root / "source.spm"
    source.write_bytes((root / "sp.model").read_bytes())
    (root / "target.spm").write_bytes(source.read_bytes())
    with warnings.catch_warnings():  # it recommends sacremoses
        warnings.simplefilter("ignore", UserWarning)
        tokenizer = MarianTokenizer(str(source), str(root / "target.spm"),
                                    str(root / "vocab.json"))
    out = root / "checkpoint"
    tokenizer.save_pretrained(out)
    torch.manual_seed(seed)
    config = MarianConfig(vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2,
                          encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
                          pad_token_id=2, eos_token_id=0, decoder_start_token_id=2)
    MarianMTModel(config).save_pretrained(out)
    return out
