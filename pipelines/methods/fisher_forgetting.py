"""Fisher forgetting (Golatkar, Achille, Soatto, "Eternal Sunshine of the Spotless Net: Selective
Forgetting in Deep Networks", CVPR 2020), written in PyTorch for camu-pipe.

The method adds Gaussian noise to the original weights, shaped by the inverse of the diagonal
Fisher information on the retained data: weights that Dr does not pin down get the most noise, so
what only Df taught is scrambled. In class removal the forgotten classes' output rows are also
reset to zero.

Sources (read in the two public implementations):
- if-loops/selective-synaptic-dampening, `src/forget_full_class_strategies.py` (class removal) and
  `src/forget_random_strategies.py` (random removal), function `FisherForgetting` with `hessian`
  and `get_mean_var`; a copy of AdityaGolatkar/SelectiveForgetting `Forgetting.ipynb` (cells
  72-78). camu-pipe follows the SSD files because they are written for its two protocols:
  full-class removal resets the forgotten class's rows, random removal does not.

Defaults and where they come from:
- `alpha` 1e-6: hard-coded in SSD's `FisherForgetting` (both files) and set in the original
  notebook's Fisher cells (77/78); the function's own default (3e-6) is never used.
- The Fisher diagonal, `hessian(retain_train_dl.dataset, model)`: over Dr, model in eval mode,
  one sample at a time, for every class y the squared gradient of CE(output, y) weighted by the
  detached softmax p(y|x), summed and divided by |Dr|. Here a batch's per-sample gradients come
  from one backward pass per class to every layer's output (eval mode makes each sample's output
  independent of the batch, so this is the same quantity; `fisher_diagonal_vmap` computes it
  sample by sample with torch.func, and the tests check both agree); `batch_size` (128) only
  sets how many samples at once.
- `get_mean_var`: var = alpha * min(1 / (F + 1e-8), 1e3), capped at 1e2 for parameters whose
  first dimension is the number of classes (the output layer), averaged over dimension 1 for
  parameters with more than one dimension; mu = the original weights. Class removal: the forgotten
  classes' rows get mu = 0 and var = 1e-4, then the output layer's variance (weight and bias) and
  every other 1-D parameter's is multiplied by 10. Random removal: only the 1-D parameters'
  (the output layer's bias among them) are multiplied by 10.
- New weights: mu + sqrt(var) * N(0, 1) for every parameter, drawn once after
  `torch.manual_seed(seed)` as the original notebook seeds it; no fine-tuning follows.
- Cost: |Dr| x classes per-sample backward passes, as in the reference.
"""

import torch
import torch.nn.functional as F


def weighted_squares(module, inp, delta, w):
    """sum over the batch of w * (per-sample gradient of `module`'s parameters)^2, given its input
    and the gradient of the loss at its output (per sample: eval mode keeps samples independent).
    A linear layer's per-sample gradient is delta x input, so its square is delta^2 x input^2 and
    the sum is one matrix product."""
    b = inp.shape[0]
    if isinstance(module, torch.nn.Linear):
        d2 = delta.pow(2) * w[:, None]
        g = {"weight": d2.t() @ inp.pow(2)}
        if module.bias is not None:
            g["bias"] = d2.sum(0)
        return g
    if isinstance(module, torch.nn.Conv2d):
        patches = F.unfold(inp, module.kernel_size, module.dilation, module.padding, module.stride)
        d = delta.reshape(b, delta.shape[1], -1)
        g = {"weight": torch.einsum("bol,bkl->bok", d, patches).reshape(b, *module.weight.shape)}
        if module.bias is not None:
            g["bias"] = d.sum(2)
    elif isinstance(module, torch.nn.BatchNorm2d):
        norm = (inp - module.running_mean.view(1, -1, 1, 1)) / torch.sqrt(module.running_var.view(1, -1, 1, 1) + module.eps)
        g = {"weight": (delta * norm).sum((2, 3)), "bias": delta.sum((2, 3))}
    else:
        raise TypeError(f"no per-sample gradient for {type(module).__name__}")
    return {k: torch.einsum("b,b...->...", w, v.pow(2)) for k, v in g.items()}


def fisher_diagonal(ctx, model, batch_size):
    """E over Dr of sum_y p(y|x) * (d CE(f(x), y) / d w)^2, per parameter: for each class, one
    backward pass of the batch to every layer's output, from which each sample's gradient of each
    layer's weights follows (input x output-gradient), squared and weighted by p(y|x)."""
    layers = [(n, m) for n, m in model.named_modules()
              if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.BatchNorm2d))]
    covered = {f"{n}.{k}" for n, m in layers for k, _ in m.named_parameters(recurse=False)}
    rest = [k for k, _ in model.named_parameters() if k not in covered]
    if rest:
        raise TypeError(f"parameters outside Linear, Conv2d and BatchNorm2d layers: {rest[:3]}")
    seen = {}

    def keep(name):
        def hook(module, args, out):
            seen[name] = (args[0].detach(), out)
        return hook

    handles = [m.register_forward_hook(keep(n)) for n, m in layers]
    acc = {k: torch.zeros_like(v) for k, v in model.named_parameters()}
    n = 0
    loader = ctx.loader("remain", batch_size=batch_size, shuffle=False)
    try:
        for b, (x, _) in enumerate(loader):
            seen.clear()
            logits = model(x)[0]
            prob = F.softmax(logits, dim=-1).detach()
            names = [nm for nm, _ in layers]
            outs = [seen[nm][1] for nm in names]
            for y in range(prob.shape[1]):
                target = torch.full((x.shape[0],), y, dtype=torch.int64, device=x.device)
                # A sum over samples: each sample's output gradient is its own loss's.
                loss = F.cross_entropy(logits, target, reduction="sum")
                deltas = torch.autograd.grad(loss, outs, retain_graph=True)
                w = prob[:, y]
                for (nm, m), d in zip(layers, deltas):
                    for k, sq in weighted_squares(m, seen[nm][0], d.detach(), w).items():
                        acc[f"{nm}.{k}"] += sq
            n += x.shape[0]
            if b % 50 == 0:
                ctx.log(f"fisher: {n}/{len(loader.indices)} samples of Dr")
    finally:
        for h in handles:
            h.remove()
    return {k: v / n for k, v in acc.items()}


def fisher_diagonal_vmap(model, x):
    """The same quantity from per-sample gradients by torch.func (slow; the check of the above)."""
    from torch.func import functional_call, grad, vmap
    
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p, xi, yi):
        return F.cross_entropy(functional_call(model, (p, buffers), (xi.unsqueeze(0),))[0], yi.unsqueeze(0))

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))
    with torch.no_grad():
        prob = F.softmax(model(x)[0], dim=-1)
    acc = {k: torch.zeros_like(v) for k, v in params.items()}
    for y in range(prob.shape[1]):
        g = per_sample(params, x, torch.full((x.shape[0],), y, dtype=torch.int64))
        for k, gk in g.items():
            acc[k] += (prob[:, y].view(-1, *([1] * (gk.dim() - 1))) * gk.pow(2)).sum(0)
    return {k: v / x.shape[0] for k, v in acc.items()}


def unlearn(ctx):
    alpha = ctx.param("alpha", 1e-6)
    batch_size = ctx.param("batch_size", 128)
    model = ctx.original_model().eval()
    fisher = fisher_diagonal(ctx, model, batch_size)
    forget_classes = ctx.split.classes if ctx.split.scenario == "class" else []
    ctx.record(variant="full class" if forget_classes else "random", forget_classes=forget_classes)
    torch.manual_seed(ctx.seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            var = (1.0 / (fisher[name] + 1e-8)).clamp(max=1e3)
            output_layer = p.shape[0] == ctx.classes
            if output_layer:
                var = var.clamp(max=1e2)
            var = alpha * var
            if p.dim() > 1:
                var = var.mean(dim=1, keepdim=True).expand_as(p).clone()
            mu = p.detach().clone()
            if output_layer and forget_classes:
                mu[forget_classes] = 0
                var[forget_classes] = 0.0001
            if output_layer and forget_classes:
                var *= 10
            elif p.dim() == 1:
                var *= 10
            p.copy_(mu + var.sqrt() * torch.empty_like(p).normal_())
    return model
