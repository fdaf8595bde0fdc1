"""tabom's diffusion LMs inside lm-evaluation-harness: the model class registered as ``tabom``.

Importing this module registers it (``lm_eval.api.registry.register_model("tabom")``)::

    import lm_eval
    import tabom.eval.lm_eval_model  # noqa: F401  (registers "tabom")
    out = lm_eval.simple_evaluate(model="tabom", model_args="model=tiny,strategy=entropy,gen_length=64",
                                  tasks=["gsm8k_cot"])

or from the shell, ``tabom lm-eval --model tabom --model_args model=PATH,adapter=PATH,... --tasks ...``.

``generate_until`` decodes with :func:`tabom.decoding.generate`, batched (requests with the same
generation arguments go together), and cuts each response at the first ``until`` string.
Model args: ``model``, ``adapter``, ``strategy``, ``gen_length`` (default: the task's
``max_gen_toks``), ``steps`` (default gen_length), ``block_length``, ``temperature`` (default: the
task's when it samples, else 0), ``top_p``, ``top_k``, ``tokens_per_step``, ``seed``, ``device``,
``dtype``, ``batch_size`` (a number, or ``auto``: per group of requests, the largest batch whose
decoding fits the device's free memory or ``max_memory``, e.g. ``max_memory=40GB``, as ``tabom eval
--batch-size auto``; lm-eval's own ``--batch_size auto`` asks for the same), and fast decoding's ``threshold`` (tau in (0, 1]) and ``cache``
(none, prefix, dual; dual needs ``block_length``). Under ``torchrun`` / ``accelerate launch`` the model reports its
rank and world size (and gathers with ``torch.distributed``), so lm-eval gives each process its
share of the requests and rank 0 writes the results. The loglikelihood methods raise NotImplementedError: the paper scores
DLMs generatively, and a masked-diffusion likelihood is only a Monte-Carlo ELBO bound.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from tabom.tasks.release_protocol import cut_at_stops

NOT_GENERATIVE = (
    "tabom's lm-eval model only generates: masked diffusion LMs are evaluated generatively here "
    "(generate_until, as in the paper); a loglikelihood would need a Monte-Carlo ELBO estimate, "
    "which tabom does not provide. Use generative tasks (e.g. gsm8k_cot, ifeval, humaneval)."
)


def _opt(value: Any, kind: type) -> Any:
    """lm-eval passes model args as parsed scalars or strings; '' / 'none' mean unset."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    return kind(value)


def _batch_arg(batch_size: Any, max_memory: str | None) -> int | None:
    """``batch_size`` as a number, or None for ``auto`` (lm-eval's ``auto:N`` too: one pick per group here)."""
    from tabom.eval.decode_memory import parse_batch_size  # noqa: PLC0415

    text = "16" if _opt(batch_size, str) is None else str(batch_size).strip()
    return parse_batch_size("auto" if text.lower().startswith("auto") else text, max_memory)


@register_model("tabom")
class TabomLM(LM):
    """An lm-eval ``LM`` over a tabom DiffusionLM (optionally with a LoRA adapter)."""

    def __init__(
        self,
        model: str = "tiny",
        adapter: str | None = None,
        strategy: str | None = None,
        gen_length: int | None = None,
        steps: int | None = None,
        block_length: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        tokens_per_step: int | None = None,
        threshold: float | None = None,
        cache: str | None = None,
        seed: int = 0,
        device: str | None = None,
        dtype: str = "auto",
        batch_size: int | str | None = 16,
        max_memory: str | None = None,
        **unused: Any,
    ) -> None:
        super().__init__()
        from tabom.eval.model_spec import load_eval_model  # noqa: PLC0415
        from tabom.eval.sharding import Shard  # noqa: PLC0415

        self.max_memory = _opt(max_memory, str)
        self.batch_size = _batch_arg(batch_size, self.max_memory)  # None: auto, picked per group of requests
        self.batch_sizes: dict[str, int] = {}  # lm-eval reports these in its results' config
        self.shard = Shard.from_env()  # under torchrun / accelerate launch: lm-eval shards and gathers
        self._rank, self._world_size = self.shard.rank, self.shard.world
        device = _opt(device, str)
        if device is not None and device.startswith("cuda") and not torch.cuda.is_available():
            device = "cpu"  # lm-eval's --device defaults to cuda:0 even on machines without one
        if self.shard.world > 1 and self.shard.device() is not None:
            device = self.shard.device()  # one GPU per process, whatever --device says
        self.lm = load_eval_model(str(model), _opt(adapter, str), device=device, dtype=dtype)
        self._device = torch.device(str(self.lm.device))
        self.strategy = _opt(strategy, str) or self.lm.default_strategy
        self.gen_length = _opt(gen_length, int)
        self.steps = _opt(steps, int)
        self.block_length = _opt(block_length, int)
        self.temperature = _opt(temperature, float)
        self.top_p = _opt(top_p, float)
        self.top_k = _opt(top_k, int)
        self.tokens_per_step = _opt(tokens_per_step, int)
        self.threshold = _opt(threshold, float)
        self.cache = _opt(cache, str) or "none"
        from tabom.decoding.kv_cache import require_cache_support  # noqa: PLC0415
        from tabom.decoding.settings import DecodeSettings  # noqa: PLC0415

        # bad values (tau outside (0, 1], dual without blocks, ...) fail before any request
        DecodeSettings(block_length=self.block_length, tokens_per_step=self.tokens_per_step,
                       threshold=self.threshold, cache=self.cache)
        require_cache_support(self.lm, self.cache)
        self.generator = torch.Generator(device="cpu").manual_seed(int(seed))
        self._templated = False

    # ------------------------------------------------------------------ lm-eval hooks
    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None) -> "TabomLM":
        """``model_args`` win over lm-eval's own flags (its --device defaults to cuda:0)."""
        from lm_eval.utils import simple_parse_args_string  # noqa: PLC0415

        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict[str, Any], additional_config: dict | None = None) -> "TabomLM":
        """Build from parsed ``model_args``; lm-eval's non-None flags fill only keys they leave unset."""
        extra = {k: v for k, v in (additional_config or {}).items() if v is not None and k not in arg_dict}
        return cls(**arg_dict, **extra)

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's ``tensor`` concatenated along a new first dimension (lm-eval pads shards with it)."""
        if self.shard.world == 1:
            return tensor
        import torch.distributed as dist  # noqa: PLC0415

        parts = [torch.zeros_like(tensor) for _ in range(self.shard.world)]
        dist.all_gather(parts, tensor)
        return torch.stack(parts)

    def gather_object(self, obj: Any, dst: int = 0) -> list[Any] | None:
        """Every rank's ``obj`` on rank 0 (lm-eval gathers samples and metrics with it); None elsewhere."""
        return self.shard.gather(obj)

    def barrier(self) -> None:
        """Wait for every rank."""
        self.shard.barrier()

    @property
    def tokenizer_name(self) -> str:
        """lm-eval's tokenizer identifier: the model's name with ``/`` replaced by ``__``."""
        return str(getattr(self.lm, "name", "tabom")).replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        """The tokenizer's chat template (None when it has none); the argument is ignored."""
        return getattr(self.lm.tokenizer, "chat_template", None)

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The chat-formatted prompt; later contexts are then tokenized without a second template."""
        self._templated = True
        tok = self.lm.tokenizer
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(chat_history, tokenize=False, add_generation_prompt=add_generation_prompt)
        return "\n".join(m["content"] for m in chat_history)

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """Not supported: raises NotImplementedError (tabom's lm-eval model only generates)."""
        raise NotImplementedError(NOT_GENERATIVE)

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """Not supported: raises NotImplementedError (tabom's lm-eval model only generates)."""
        raise NotImplementedError(NOT_GENERATIVE)

    # ------------------------------------------------------------------ generation
    def _encode(self, context: str) -> list[int]:
        if self._templated:
            return list(self.lm.tokenizer.encode(context, add_special_tokens=False))
        return self.lm.encode_prompt(context)

    def _settings(self, gen_kwargs: dict[str, Any]) -> Any:
        gen_length = self.gen_length or int(gen_kwargs.get("max_gen_toks", 256))
        if self.temperature is not None:
            temperature = self.temperature
        elif gen_kwargs.get("do_sample", False):
            temperature = float(gen_kwargs.get("temperature", 1.0))
        else:
            temperature = 0.0
        from tabom.decoding.settings import DecodeSettings  # noqa: PLC0415

        return DecodeSettings(gen_length=gen_length, steps=self.steps or gen_length, block_length=self.block_length,
                              strategy=self.strategy, temperature=temperature, top_p=self.top_p, top_k=self.top_k,
                              tokens_per_step=self.tokens_per_step, threshold=self.threshold, cache=self.cache)

    def _auto_batch(self, key: str, prompts: list[list[int]], settings: Any) -> int:
        """``batch_size=auto``: the largest batch for these prompts that fits the budget (logged, kept per group)."""
        import logging  # noqa: PLC0415

        from tabom.eval.decode_memory import auto_batch_for  # noqa: PLC0415

        gen = int(settings.resolved(self.lm).gen_length)
        batch, budget = auto_batch_for(self.lm, [len(p) for p in prompts], gen, self.max_memory)
        self.batch_sizes[key] = batch
        logging.getLogger(__name__).info("tabom: batch size auto: %d (decoding budget %.1f GB)", batch, budget / 1e9)
        return batch

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Decode every request; requests sharing generation arguments are batched together."""
        from tabom.decoding import generate  # noqa: PLC0415

        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            _, gen_kwargs = request.args
            groups.setdefault(json.dumps(gen_kwargs, sort_keys=True, default=str), []).append(index)
        outputs: list[str] = [""] * len(requests)
        for key, indices in groups.items():
            gen_kwargs = json.loads(key)
            until = gen_kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            prompts = [self._encode(requests[i].args[0]) for i in indices]
            settings = self._settings(gen_kwargs)
            batch = self.batch_size or self._auto_batch(key, prompts, settings)
            result = generate(self.lm, prompts, settings, generator=self.generator, batch_size=batch,
                              progress=not disable_tqdm)
            for i, row in zip(indices, result.tokens):
                outputs[i] = cut_at_stops(self.lm.decode(row), until)
                self.cache_hook.add_partial("generate_until", requests[i].args, outputs[i])
        return outputs
