"""Fine-tuning (FT) written in PyTorch: continue training f_o on Dr with cross-entropy.

The same method as the built-in `finetune` (crates/lab/src/methods/finetune.rs), with the same
defaults, from OPTML-Group/Unlearn-Sparse `unlearn/FT.py` via `unlearn/impl.py`:
- lr 0.01, 10 epochs: the README's FT command (`--unlearn_lr 0.01 --unlearn_epochs 10`);
- SGD, momentum 0.9, weight decay 5e-4, batch 256: `arg_parser.py`'s defaults;
- the model in train mode, Dr reshuffled every epoch.
It exists to show that a method written against camu_pipe runs as the built-in does.
"""

import torch
import torch.nn.functional as F


def unlearn(ctx):
    lr = ctx.param("lr", 0.01)
    epochs = ctx.param("epochs", 10)
    model = ctx.original_model().train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=ctx.param("momentum", 0.9),
                          weight_decay=ctx.param("weight_decay", 5e-4))
    for epoch in range(epochs):
        total, n = 0.0, 0
        for x, y in ctx.loader("remain", batch_size=ctx.param("batch_size", 256), shuffle=True):
            loss = F.cross_entropy(model(x)[0], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + loss.item(), n + 1
        ctx.log(f"finetune_torch epoch {epoch + 1}/{epochs}: mean loss {total / n:.4f}")
    return model
