"""Hugging Face transformers sequence classifier: fine-tune a local checkpoint, or build one from
a config whose size is searched."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import automl
from automl.components import Architecture, DataSpec, ParamDef
from automl.errors import ConfigError
from automl.params import Choice, Fixed, FloatRange, IntRange


class TransformerClassifier(Architecture):
    name = "transformer"
    description = ("transformers sequence classifier: `pretrained` local checkpoint (fine-tuned) "
                   "or a BERT-style model of searched size built from a config")
    data_kinds: ClassVar[tuple[str, ...]] = ("text",)
    params = {
        "pretrained": ParamDef(Fixed(None), (str, type(None)),
                               "local checkpoint directory; unset = build from a config",
                               is_path=True),
        "layers": ParamDef(IntRange(1, 4), int, "encoder layers (config-built only)"),
        "hidden": ParamDef(Choice((64, 128, 256)), int, "hidden size (config-built only)"),
        "heads": ParamDef(Choice((2, 4)), int, "attention heads; must divide hidden"),
        "dropout": ParamDef(FloatRange(0.0, 0.2), float, "hidden and attention dropout"),
        "freeze_base": ParamDef(Fixed(False), bool, "train only the classifier head"),
        "trust_remote_code": ParamDef(Fixed(False), bool,
                                      "allow code shipped with the checkpoint (off unless set)"),
    }

    def build(self, params: dict[str, Any], spec: DataSpec):
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()  # the library prints nothing
        pad = int(spec.extra.get("pad_token_id", 0))
        if params.get("pretrained"):
            path = Path(params["pretrained"])
            if not path.is_dir():
                raise ConfigError(f"no checkpoint directory at {path}",
                                  path="architecture.transformer.pretrained")
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                str(path), num_labels=spec.output_size, local_files_only=True,
                trust_remote_code=bool(params["trust_remote_code"]),
                hidden_dropout_prob=params["dropout"],
                attention_probs_dropout_prob=params["dropout"])
        else:
            hidden, heads = int(params["hidden"]), int(params["heads"])
            if hidden % heads:
                raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
            if "vocab_size" not in spec.extra:
                raise ValueError("a config-built transformer needs spec.extra['vocab_size'] from "
                                 "a text dataset")
            config = transformers.BertConfig(
                vocab_size=int(spec.extra["vocab_size"]), hidden_size=hidden,
                num_hidden_layers=int(params["layers"]), num_attention_heads=heads,
                intermediate_size=4 * hidden, hidden_dropout_prob=params["dropout"],
                attention_probs_dropout_prob=params["dropout"],
                max_position_embeddings=max(512, spec.input_shape[0]),
                num_labels=spec.output_size, pad_token_id=pad)
            model = transformers.AutoModelForSequenceClassification.from_config(config)
        if params["freeze_base"]:
            base = getattr(model, model.base_model_prefix, None)
            for p in (base.parameters() if base is not None else []):
                p.requires_grad_(False)
        from automl_plugins.architectures.hf_logits import LogitsOnly

        return LogitsOnly(model, pad)


@automl.hookimpl
def automl_register_architectures(registrar):
    registrar.add(TransformerClassifier)
