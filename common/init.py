"""Leaky-aware initialisation: Kaiming for the activation that actually follows each layer.

**The rule.** A weight layer followed by a LeakyReLU of negative slope α (ReLU: α = 0) whose own
output gain is ``g`` (``FusedLeakyReLU.gain``; 1 otherwise) gets weights drawn from
N(0, std²) with::

    std = sqrt(2 / (1 + α²)) / g / sqrt(fan)

Why: for a zero-mean symmetric pre-activation ``z``, ``E[lrelu(z)²] = (1 + α²)/2 · E[z²]``, and a
layer with i.i.d. zero-mean weights maps the second moment of its input ``x`` to
``E[y²] = fan_in · std² · E[x²]``. The product is 1 with the std above, so the forward signal
neither explodes nor vanishes through depth. Backwards, the local slope squared averages
``(1 + α²)/2`` as well, so ``mode='fan_out'`` (std from the backward fan) keeps the per-element
gradient variance and ``mode='fan_in'`` keeps the *total* gradient energy ``‖∂L/∂x‖²``
(``E‖Wᵀg‖² = fan_in · std² · ‖g‖²``, summed over every connection); the two coincide when
a layer keeps its width. Activations that are not piecewise linear (ELU, GELU, tanh, sigmoid,
...) get ``1 / sqrt(E[act(z)²])`` for z ~ N(0, 1), the same second-moment argument evaluated at
unit scale (Gauss–Hermite quadrature, no random draws); a layer followed by no activation
(an output layer) gets gain 1.

**Pitfall: ``torch.nn.init.kaiming_normal_`` needs ``a=alpha`` explicitly.** Its defaults are
``a=0, nonlinearity='leaky_relu'``, i.e. the ReLU gain ``sqrt(2)``: a LeakyReLU(0.5) network
initialised that way grows its signal by (1 + 0.25) = 1.25 per layer (≈ 7·10⁴ over 50 layers).
torch's default layer init (``kaiming_uniform_(a=sqrt(5))``, variance 1/(3·fan_in)) shrinks it by
(1 + α²)/6 per layer instead. Both are negative controls in ``tests/test_init.py``.

**Pitfall: torch's fan for transposed convolutions.** ``_calculate_fan_in_and_fan_out`` reads
weight dim 1 as the input channels and multiplies by the kernel size. A ``ConvTranspose``
weight is ``(in, out/groups, *k)``, and the forward pass is the *adjoint* of a strided
convolution: each output element receives one tap per input channel for only those kernel
positions that line up with the stride, on average ``k/s`` per spatial dim. So, per output
element, ::

    fan_in (ConvTranspose)  = in_channels/groups  · Π k_d / s_d     (forward)
    fan_out (ConvTranspose) = out_channels/groups · Π k_d           (backward, per input element)

and for an ordinary strided convolution, symmetrically, ``fan_in = in/groups · Π k_d`` and
``fan_out = out/groups · Π k_d / s_d``. For DCGAN's ``ConvTranspose2d(C, C/2, 4, 2, 1)`` torch's
``fan_in`` is ``(C/2)·16 = 8C`` where the forward pass sees ``C·16/4 = 4C``: the variance halves
at every stride-2 layer (×1/16 over a 64×64 generator); with equal channels it would quarter.

**Exact fans from the input size.** The ``k/s`` count is exact only away from the borders: zero
padding crops taps there (DCGAN's 4→8 layer averages 1.75 taps per dim, not 2: ×0.77 of the
variance), and a generator's first layer ``ConvTranspose2d(nz, C, 4, 1, 0)`` on a 1×1 latent
sees exactly one tap per channel (fan_in = nz, not 16·nz). Give ``input_size`` (or an
``example_input`` to :func:`leaky_init_`) and the fans are the exact average number of
connections per output (fan_in) or input (fan_out) element, counted over the real geometry.
Convolutions with ``padding_mode`` other than ``'zeros'`` see data at every tap.

Also here: DCGAN's N(0, 0.02) init (:func:`dcgan_init_`) and a positive bias init in front of
rectifiers (:func:`bias_init_`, or ``bias=`` of :func:`leaky_init_`), a classic remedy for
units that start dead.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import nn

from common.activations.graph import NORM_TYPES, WEIGHT_TYPES, LinkGraph, Method, find_links, run_example
from common.activations.registry import activation_alpha, activation_gain, own_bias

Mode = Literal["fan_in", "fan_out"]
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def leaky_gain(alpha: float, act_gain: float = 1.0) -> float:
    """``sqrt(2 / (1 + α²)) / act_gain``: the Kaiming gain for a LeakyReLU(α) scaled by ``act_gain``."""
    if not math.isfinite(alpha):
        raise ValueError(f"alpha must be finite (got {alpha!r})")
    if not (math.isfinite(act_gain) and act_gain > 0):
        raise ValueError(f"act_gain must be a finite number > 0 (got {act_gain!r})")
    return math.sqrt(2.0 / (1.0 + alpha * alpha)) / act_gain


_HERMITE_X, _HERMITE_W = np.polynomial.hermite_e.hermegauss(80)


def init_gain(activation: nn.Module | None) -> float:
    """The init gain for a layer followed by ``activation`` (None: no activation, gain 1).

    Piecewise-linear activations (:func:`activation_alpha` is not None) get
    :func:`leaky_gain`; the others ``1 / sqrt(E[act(z)²])`` at z ~ N(0, 1), by quadrature.
    """
    if activation is None:
        return 1.0
    alpha = activation_alpha(activation)
    if alpha is not None:
        return leaky_gain(alpha, activation_gain(activation))
    z = torch.from_numpy(_HERMITE_X)
    with torch.no_grad():
        try:
            values = activation(z).double().cpu().numpy()
        except RuntimeError:  # an activation with float32 parameters: evaluate in its dtype
            p = next(activation.parameters())
            values = activation(z.to(p)).double().cpu().numpy()
    second_moment = float(np.sum(_HERMITE_W * values**2) / math.sqrt(2 * math.pi))
    return 1.0 / math.sqrt(second_moment)


def _as_size(input_size: int | Sequence[int], nd: int) -> tuple[int, ...]:
    size = (input_size,) * nd if isinstance(input_size, int) else tuple(int(s) for s in input_size)
    if len(size) != nd or any(s < 1 for s in size):
        raise ValueError(f"input_size must be {nd} positive spatial sizes (got {input_size!r})")
    return size


def _taps(layer: nn.Module, d: int, n_in: int | None) -> tuple[float, float]:
    """Average connections per output and per input element along spatial dim ``d``."""
    k, s, dil = layer.kernel_size[d], layer.stride[d], layer.dilation[d]
    transposed = isinstance(layer, _CONV_T)
    if n_in is None:  # interior of a large input: no border effects
        return (k / s, float(k)) if transposed else (float(k), k / s)
    if transposed:
        p = layer.padding[d]
        n_out = (n_in - 1) * s - 2 * p + dil * (k - 1) + layer.output_padding[d] + 1
        count = sum(1 for q in range(n_in) for j in range(k) if 0 <= q * s - p + j * dil < n_out)
    else:
        if isinstance(layer.padding, str):  # 'valid' or 'same' (stride 1)
            total = dil * (k - 1) if layer.padding == "same" else 0
            p = total // 2
            n_out = n_in + total - dil * (k - 1)
        else:
            p = layer.padding[d]
            n_out = (n_in + 2 * p - dil * (k - 1) - 1) // s + 1
        if layer.padding_mode != "zeros":  # reflect/replicate/circular: every tap sees data
            count = n_out * k
        else:
            count = sum(1 for o in range(n_out) for j in range(k) if 0 <= o * s - p + j * dil < n_in)
    if n_out < 1:
        raise ValueError(f"input size {n_in} is too small for {layer}")
    return count / n_out, count / n_in


def effective_fans(layer: nn.Module, input_size: int | Sequence[int] | None = None) -> tuple[float, float]:
    """``(fan_in, fan_out)`` as the forward and backward passes of ``layer`` really see them.

    ``fan_in``: average number of weights feeding one output element; ``fan_out``: average
    number of weights one input element feeds. Linear: ``(in_features, out_features)``. Convs
    and transposed convs: see the module docstring; ``input_size`` (spatial dims of the layer's
    input, an int for all dims) makes them exact at the borders.
    """
    if isinstance(layer, nn.Linear):
        return float(layer.in_features), float(layer.out_features)
    if not isinstance(layer, _CONV + _CONV_T):
        raise TypeError(f"effective_fans supports Linear, ConvNd and ConvTransposeNd (got {type(layer).__name__})")
    nd = len(layer.kernel_size)
    sizes = (None,) * nd if input_size is None else _as_size(input_size, nd)
    per_out, per_in = 1.0, 1.0
    for d in range(nd):
        a, b = _taps(layer, d, sizes[d])
        per_out, per_in = per_out * a, per_in * b
    return layer.in_channels / layer.groups * per_out, layer.out_channels / layer.groups * per_in


def _kaiming_(layer: nn.Module, gain: float, mode: Mode, bias: float | None, input_size: Any) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out' (got {mode!r})")
    fan_in, fan_out = effective_fans(layer, input_size)
    std = gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    with torch.no_grad():
        layer.weight.normal_(0.0, std)
        if bias is not None and getattr(layer, "bias", None) is not None:
            layer.bias.fill_(bias)
    return std


def kaiming_leaky_(
    layer: nn.Module,
    alpha: float,
    act_gain: float = 1.0,
    mode: Mode = "fan_in",
    *,
    bias: float | None = 0.0,
    input_size: int | Sequence[int] | None = None,
) -> float:
    """Initialise one Linear/Conv/ConvTranspose layer for a following LeakyReLU(α) of gain ``act_gain``.

    Weights ~ N(0, (sqrt(2/(1+α²)) / act_gain)² / fan) with the layer's *effective* fan
    (:func:`effective_fans`; exact at the borders when ``input_size`` is given). ``bias``: the
    value for the layer's bias (None leaves it alone). Returns the std used.
    """
    return _kaiming_(layer, leaky_gain(alpha, act_gain), mode, bias, input_size)


def kaiming_for_(
    layer: nn.Module,
    activation: nn.Module | None,
    mode: Mode = "fan_in",
    *,
    bias: float | None = 0.0,
    input_size: int | Sequence[int] | None = None,
) -> float:
    """Initialise ``layer`` for the activation module that follows it (None: no activation).

    The gain is :func:`init_gain` of ``activation`` (α and the activation's own gain for
    rectifiers; the second-moment gain for smooth ones). Returns the std used.
    """
    return _kaiming_(layer, init_gain(activation), mode, bias, input_size)


def conv_input_sizes(model: nn.Module, example_input: Any) -> dict[str, tuple[int, ...]]:
    """``{conv layer name: spatial size of its input}`` from one no-grad eval-mode forward pass
    of ``example_input`` (a tensor, or a tuple of positional arguments); train modes restored."""
    sizes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, _CONV + _CONV_T):
            nd = len(m.kernel_size)

            def hook(mod: nn.Module, args: tuple, name: str = name, nd: int = nd) -> None:
                sizes.setdefault(name, tuple(args[0].shape[-nd:]))

            handles.append(m.register_forward_pre_hook(hook))
    try:
        run_example(model, example_input)
    finally:
        for h in handles:
            h.remove()
    return sizes


def _bias_carrier(modules: dict[str, nn.Module], graph: LinkGraph, layer: str, act: str) -> nn.Parameter | None:
    """The bias added last before activation ``act`` on ``layer``'s path: the activation's own
    (FusedLeakyReLU), else the last norm's shift between them (None for a norm without affine:
    a bias before a norm is cancelled by it), else the layer's."""
    own = own_bias(modules[act])
    if own is not None:
        return own  # type: ignore[return-value]
    link = graph.link(layer, act)
    for name in reversed(link.between if link else ()):
        m = modules.get(name)
        if isinstance(m, NORM_TYPES):
            return getattr(m, "bias", None)
    return getattr(modules[layer], "bias", None)


def leaky_init_(
    model: nn.Module,
    *,
    mode: Mode = "fan_in",
    bias: float = 0.0,
    example_input: Any = None,
    method: Method = "auto",
) -> dict[str, float]:
    """Initialise every Linear/Conv/ConvTranspose layer of ``model`` for the activation after it.

    The activation that follows each layer is found by :func:`common.activations.graph.find_links`
    (fx tracing; a hooked forward pass of ``example_input`` for what fx cannot see; else
    registration order). Functional ``F.relu`` calls are invisible and count as "no activation"
    (gain 1): use activation modules. Layer biases are zeroed; the bias added last before each
    rectifier (the FusedLeakyReLU's own, a norm's in between, or the layer's) is set to ``bias``
    — pass 0.1 for the positive-bias remedy. ``example_input`` (a tensor or a tuple of
    arguments; a small batch) makes conv fans exact at the borders (see the module docstring)
    and lets the links be found by running the model. Norm weights are left alone.
    Returns ``{layer name: std used}``.
    """
    graph = find_links(model, method, example_input)
    modules = dict(model.named_modules())
    sizes = conv_input_sizes(model, example_input) if example_input is not None else {}
    stds: dict[str, float] = {}
    for name, layer in modules.items():
        if not isinstance(layer, WEIGHT_TYPES):
            continue
        following = graph.following(name)
        act = modules[following[0]] if following else None
        stds[name] = kaiming_for_(layer, act, mode, input_size=sizes.get(name))
        if act is not None and activation_alpha(act) is not None:
            carrier = _bias_carrier(modules, graph, name, following[0])
            if carrier is not None:
                with torch.no_grad():
                    carrier.fill_(bias)
    return stds


def bias_init_(
    model: nn.Module, value: float = 0.1, *, method: Method = "auto", example_input: Any = None
) -> list[str]:
    """Set the bias in front of every rectifier (ReLU-family activation) to ``value``.

    The positive-bias remedy for dying units: with b = 0.1 a ReLU unit starts active on more
    than half of its inputs. Which bias: see :func:`leaky_init_`. Returns the parameters' names.
    """
    graph = find_links(model, method, example_input)
    modules = dict(model.named_modules())
    names = {id(p): n for n, p in model.named_parameters()}
    done: list[str] = []
    for link in graph.links:
        if activation_alpha(modules[link.activation]) is None:
            continue
        carrier = _bias_carrier(modules, graph, link.layer, link.activation)
        if carrier is not None and names.get(id(carrier)) not in done:
            with torch.no_grad():
                carrier.fill_(value)
            done.append(names[id(carrier)])
    return done


def dcgan_init_(model: nn.Module) -> nn.Module:
    """DCGAN's init (Radford et al. 2016, pytorch/examples): conv/linear weights N(0, 0.02),
    BatchNorm weights N(1, 0.02), all of their biases (and FusedLeakyReLU biases) 0."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, WEIGHT_TYPES):
                m.weight.normal_(0.0, 0.02)
                bias = m.bias
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None:
                m.weight.normal_(1.0, 0.02)
                bias = m.bias
            else:
                bias = own_bias(m)  # an activation holding its units' bias (FusedLeakyReLU)
            if bias is not None:
                bias.zero_()
    return model
