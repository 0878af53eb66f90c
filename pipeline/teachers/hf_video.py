"""Hugging Face transformer teachers: ``timesformer``, ``videomae`` and ``hf_auto``.

The checkpoint's declared architecture (``config.architectures[0]``, e.g.
``VideoMAEForVideoClassification``) is loaded with ``from_pretrained`` (so transformers' own
checkpoint key conversions apply) and its loading report must be clean: any missing,
unexpected or misshapen key is a ``ModelLoadError``. The embedding pools the backbone's
``last_hidden_state`` (``POOLINGS``): ``mean`` over all tokens (CLS included), ``cls`` (token 0)
or ``fc_norm_mean`` (``fc_norm`` of the mean of the patch tokens, the input of a VideoMAE
classifier). The defaults are the reference's (Breezelled/COMODO ``VideoTeacher.encode``):
TimeSformer ``mean``; VideoMAE ``mean`` when its config says ``use_mean_pooling``, else ``cls``
(the backbone has applied its final layernorm then). Token layouts, used for per-frame embeddings:

- TimeSformer: ``[CLS] + P x F`` patch tokens, space-major (tokens of one patch position over
  all frames are adjacent). Per frame = mean of the P patch tokens of that frame.
- VideoMAE: ``F/tubelet x P`` tokens, time-major, no CLS. Per temporal position = mean of its
  P tokens, so F' = F / tubelet_size (8 for the 16-frame base models).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from comodo.pipeline.registry import TEACHERS
from comodo.pipeline.teachers.base import Teacher, TeacherInfo, check_pooling
from comodo.pipeline.teachers.hub import (
    Checkpoint,
    preprocessing_of,
    raise_if_not_strict,
    read_matching,
    rename_keys,
    resolve_checkpoint,
    weights_hash,
)
from comodo.stores.errors import ConfigError, ModelLoadError

log = logging.getLogger(__name__)

# transformers 4 checkpoints (and the original MCG-NJU ones) name the VideoMAE query/value
# biases q_bias/v_bias; the module calls them query.bias/value.bias.
VIDEOMAE_RENAMES = (
    (r"attention\.attention\.q_bias$", "attention.attention.query.bias"),
    (r"attention\.attention\.v_bias$", "attention.attention.value.bias"),
)
# legacy checkpoint key names per model_type, applied by every teacher (hf_auto included)
LEGACY_RENAMES: dict[str, tuple[tuple[str, str], ...]] = {"videomae": VIDEOMAE_RENAMES}


@dataclass(frozen=True)
class TokenLayout:
    """Where the patch tokens of each temporal position sit in ``last_hidden_state``."""

    prefix: int  # leading non-patch tokens (CLS)
    order: str  # "space_major" (P x T) | "time_major" (T x P)
    tubelet: int  # frames per temporal token position

    def per_frame(self, tokens: torch.Tensor, n_frames: int) -> torch.Tensor:
        """(B, N, D) tokens -> (B, F / tubelet, D) mean over patch tokens per time step."""
        batch, _, dim = tokens.shape
        n_time = n_frames // self.tubelet
        patches = tokens[:, self.prefix :]  # (B, N - prefix, D)
        if self.order == "space_major":
            return patches.reshape(batch, -1, n_time, dim).mean(1)  # (B, P, T, D) -> (B, T, D)
        return patches.reshape(batch, n_time, -1, dim).mean(2)  # (B, T, P, D) -> (B, T, D)


def _mean(teacher: VideoTransformerTeacher, tokens: torch.Tensor) -> torch.Tensor:
    return tokens.mean(1)  # (B, N, D) -> (B, D)


def _cls(teacher: VideoTransformerTeacher, tokens: torch.Tensor) -> torch.Tensor:
    return tokens[:, 0]


def _fc_norm_mean(teacher: VideoTransformerTeacher, tokens: torch.Tensor) -> torch.Tensor:
    return teacher.fc_norm(tokens[:, teacher.layout.prefix :].mean(1))  # type: ignore[misc]


POOLINGS = {"mean": _mean, "cls": _cls, "fc_norm_mean": _fc_norm_mean}


class VideoTransformerTeacher(Teacher):
    """A video transformer backbone with a declared token layout and pooling."""

    def __init__(self, net: nn.Module, info: TeacherInfo, layout: TokenLayout,
                 fc_norm: nn.Module | None = None):
        super().__init__()
        self.net = net  # the whole declared architecture, so its state dict stays complete
        self.backbone = getattr(net, net.base_model_prefix, net)
        self.fc_norm = fc_norm
        self.layout = layout
        self.info = info

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, n_frames, _, _, _ = frames.shape
        tokens = self.backbone(pixel_values=frames).last_hidden_state  # (B, N, D)
        per_frame = self.layout.per_frame(tokens, n_frames)  # (B, F', D)
        return POOLINGS[self.pooling](self, tokens), per_frame


def architecture(ckpt: Checkpoint, model_type: str | None, teacher: str) -> type:
    """The checkpoint's declared architecture class (AutoModel's choice when none is usable)."""
    import transformers
    from transformers import AutoConfig, AutoModel, PreTrainedModel

    config = AutoConfig.from_pretrained(str(ckpt.folder))
    if model_type is not None and config.model_type != model_type:
        raise ModelLoadError(f"teacher {teacher!r} needs a {model_type} checkpoint; "
                             f"{ckpt.model_id} is a {config.model_type} model. Use the "
                             f"'hf_auto' teacher or the matching teacher name")
    names = list(getattr(config, "architectures", None) or [])
    cls = getattr(transformers, names[0], None) if names else None
    if isinstance(cls, type) and issubclass(cls, PreTrainedModel) and isinstance(config, cls.config_class):
        return cls
    log.info("%s: no usable declared architecture (%s); using AutoModel", ckpt.model_id, names)
    return AutoModel


def repair_legacy_keys(net: nn.Module, ckpt: Checkpoint, report: dict[str, set[str]]) -> int:
    """Load legacy-named weights (VideoMAE q_bias/v_bias) that the loader left untouched.

    Some transformers 5 releases report such keys unexpected and keep the zero-initialised
    biases; each one is copied into its renamed parameter and struck from the report.
    """
    renames = LEGACY_RENAMES.get(net.config.model_type, ())
    if not renames:
        return 0
    legacy = read_matching(ckpt.weight_files, [pattern for pattern, _ in renames])
    params = net.state_dict()
    fixed = 0
    for key, tensor in legacy.items():
        target = next(iter(rename_keys({key: tensor}, renames)))
        if target not in params or params[target].shape != tensor.shape:
            continue  # stays unexpected: the strict check reports it
        if not torch.equal(params[target], tensor.to(params[target].dtype)):
            with torch.no_grad():
                params[target].copy_(tensor)
            fixed += 1
        report["unexpected_keys"].discard(key)
        report["missing_keys"].discard(target)
    return fixed


def load_net(ckpt: Checkpoint, model_type: str | None, teacher: str) -> nn.Module:
    """The declared architecture with the checkpoint's weights, every key accounted for."""
    cls = architecture(ckpt, model_type, teacher)
    where = f"teacher {teacher!r} from {ckpt.model_id} ({getattr(cls, '__name__', cls)})"
    try:
        net, report = cls.from_pretrained(str(ckpt.folder), output_loading_info=True,
                                          dtype=torch.float32, local_files_only=True)
    except (RuntimeError, OSError, ValueError) as err:  # size mismatches, unreadable files
        raise ModelLoadError(f"{where}: the checkpoint could not be loaded ({err}); use a "
                             f"checkpoint saved from this architecture (save_pretrained)") from None
    report = {k: set(v) for k, v in report.items() if k != "error_msgs"}
    fixed = repair_legacy_keys(net, ckpt, report)
    if fixed:
        log.warning("%s: %d legacy keys (q_bias/v_bias) were not applied by transformers "
                    "%s; loaded them explicitly", ckpt.model_id, fixed, _transformers_version())
    raise_if_not_strict(where, report["missing_keys"], report["unexpected_keys"],
                        report["mismatched_keys"])
    return net.eval()


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def _frames(teacher: str, frames: int | None, trained: int) -> int:
    if frames is not None and frames != trained:
        raise ConfigError(f"teacher {teacher!r}: the checkpoint was built for {trained} frames, "
                          f"frames={frames} was asked; leave 'frames' unset or set it to {trained}")
    return trained


def _info(teacher: str, ckpt: Checkpoint, net: nn.Module, n_frames: int, frames_out: int,
          pooling: str) -> TeacherInfo:
    config = net.config
    return TeacherInfo(
        name=teacher, model_id=ckpt.model_id, revision=ckpt.revision,
        weights_hash=weights_hash(ckpt.weight_files), num_frames=n_frames, frames_out=frames_out,
        dim=int(config.hidden_size), pooling=pooling,
        preprocessing=preprocessing_of(ckpt, int(config.image_size)),
    )


@TEACHERS.register("timesformer", doc="TimeSformer (8 frames); mean of all output tokens or CLS")
def timesformer(model: str | None = None, frames: int | None = None, pooling: str | None = None,
                revision: str | None = None) -> Teacher:
    ckpt = resolve_checkpoint(model or "facebook/timesformer-base-finetuned-k400", revision)
    pooling = check_pooling("timesformer", pooling or "mean", ("mean", "cls"))
    net = load_net(ckpt, "timesformer", "timesformer")
    n_frames = _frames("timesformer", frames, int(net.config.num_frames))
    info = _info("timesformer", ckpt, net, n_frames, n_frames, pooling)
    return VideoTransformerTeacher(net, info, TokenLayout(1, "space_major", 1))


@TEACHERS.register("videomae", doc="VideoMAE (16 frames); reference pooling (mean of all tokens, "
                   "or token 0 without use_mean_pooling), fc_norm_mean or cls")
def videomae(model: str | None = None, frames: int | None = None, pooling: str | None = None,
             revision: str | None = None) -> Teacher:
    ckpt = resolve_checkpoint(model or "MCG-NJU/videomae-base-finetuned-kinetics", revision)
    pooling = check_pooling("videomae", pooling or "reference", ("reference", *POOLINGS))
    net = load_net(ckpt, "videomae", "videomae")
    config = net.config
    n_frames = _frames("videomae", frames, int(config.num_frames))
    fc_norm = getattr(net, "fc_norm", None)
    if pooling == "reference":
        pooling = "mean" if config.use_mean_pooling else "cls"
    if pooling == "fc_norm_mean" and fc_norm is None:
        raise ConfigError(f"teacher 'videomae': pooling 'fc_norm_mean' needs a checkpoint with an "
                          f"fc_norm layer (VideoMAEForVideoClassification with use_mean_pooling); "
                          f"{ckpt.model_id} has none; use pooling 'mean' or 'cls'")
    tubelet = int(config.tubelet_size)
    info = _info("videomae", ckpt, net, n_frames, n_frames // tubelet, pooling)
    return VideoTransformerTeacher(net, info, TokenLayout(0, "time_major", tubelet), fc_norm)
