"""Trains the demo model: Llama 3.1 architecture, the real 128256-token vocabulary.

  MALLOC_MMAP_THRESHOLD_=1000000000000 MALLOC_TRIM_THRESHOLD_=1000000000000 \
    python3 models/demo/train.py --data <corpus-dir> --out <checkpoint-dir>

Reads <corpus-dir>/train.bin and val.bin (uint32 token ids, prepare-corpus.ts)
and writes an HF-layout checkpoint (bf16 model.safetensors, config.json,
generation_config.json) plus train-log.json. Deterministic given the corpus,
--seed and --steps on one thread count; --time-budget only stops early (the
log records the step reached).

Training loss: a sampled softmax over the batch's target ids, the 8192 most
frequent ids and the shared row (--negatives); validation loss is always the
exact full-vocabulary one.

Vocabulary compaction: the softmax runs over the V_used ids that occur in the
corpus plus one row shared by every other id. With tied embeddings the
exported lm head gives every unused id that row's logit, so the full
128256-way distribution is the compact one with the shared logit shifted by
log(number of unused ids): the loss below is exactly the full-vocabulary loss.
The exported unused rows are identical and compress to nearly nothing.
"""
import argparse, json, math, os, struct, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 128256
BOS, EOS_IDS = 128000, [128001, 128008, 128009]


def llama3_inv_freq(head_dim, theta, factor, low=1.0, high=4.0, original=8192):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    low_wl, high_wl = original / low, original / high
    wl = 2 * math.pi / inv
    out = torch.where(wl > low_wl, inv / factor, inv)
    smooth = (original / wl - low) / (high - low)
    mid = (1 - smooth) * out / factor + smooth * out
    is_mid = (wl <= low_wl) & (wl >= high_wl)
    return torch.where(is_mid, mid, out).float()


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, D = c['hidden_size'], c['head_dim']
        self.nh, self.nkv, self.D = c['num_attention_heads'], c['num_key_value_heads'], D
        self.input_layernorm = RMSNorm(H, c['rms_norm_eps'])
        self.post_attention_layernorm = RMSNorm(H, c['rms_norm_eps'])
        self.q_proj = nn.Linear(H, self.nh * D, bias=False)
        self.k_proj = nn.Linear(H, self.nkv * D, bias=False)
        self.v_proj = nn.Linear(H, self.nkv * D, bias=False)
        self.o_proj = nn.Linear(self.nh * D, H, bias=False)
        self.gate_proj = nn.Linear(H, c['intermediate_size'], bias=False)
        self.up_proj = nn.Linear(H, c['intermediate_size'], bias=False)
        self.down_proj = nn.Linear(c['intermediate_size'], H, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.nh, self.D).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.nkv, self.D).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.nkv, self.D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.D) + mask
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.o_proj(y)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Model(nn.Module):
    def __init__(self, c, n_compact):
        super().__init__()
        self.embed = nn.Embedding(n_compact, c['hidden_size'])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c['num_hidden_layers']))
        self.norm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        nn.init.normal_(self.embed.weight, std=0.02)
        for l in self.layers:
            for m in (l.q_proj, l.k_proj, l.v_proj, l.gate_proj, l.up_proj):
                nn.init.normal_(m.weight, std=0.02)
            for m in (l.o_proj, l.down_proj):
                nn.init.normal_(m.weight, std=0.02 / math.sqrt(2 * c['num_hidden_layers']))
        inv = llama3_inv_freq(c['head_dim'], c['rope_theta'], c['rope_scaling']['factor'])
        self.register_buffer('inv_freq', inv, persistent=False)

    def hidden(self, ids):
        T = ids.shape[1]
        freqs = torch.outer(torch.arange(T, dtype=torch.float32), self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((T, T), float('-inf')).triu(1)
        x = self.embed(ids)
        for l in self.layers:
            x = l(x, cos, sin, mask)
        return self.norm(x)

    def forward(self, ids, unused_shift):
        logits = self.hidden(ids) @ self.embed.weight.t()
        logits[..., -1] += unused_shift
        return logits

    def sampled_loss(self, ids, targets, negatives, unused_shift):
        """Cross-entropy over the batch's targets, the `negatives` ids and the shared row (not the full vocabulary)."""
        classes = torch.unique(torch.cat([negatives, targets.flatten()]))
        logits = self.hidden(ids).flatten(0, 1) @ self.embed.weight[classes].t()
        if classes[-1].item() == self.embed.weight.shape[0] - 1:
            logits[:, -1] += unused_shift
        return F.cross_entropy(logits, torch.searchsorted(classes, targets.flatten()))


def bf16_bytes(t):
    a = t.detach().to(torch.bfloat16).contiguous().view(torch.int16).numpy()
    return a.astype('<i2').tobytes()


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors:
        b = bf16_bytes(t)
        header[name] = {'dtype': 'BF16', 'shape': list(t.shape), 'data_offsets': [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header['__metadata__'] = {'format': 'pt'}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--steps', type=int, default=170)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--seq', type=int, default=128)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--hidden', type=int, default=256)
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--intermediate', type=int, default=768)
    ap.add_argument('--negatives', type=int, default=8192, help='most frequent ids always in the training softmax')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--stop-after', type=int, default=None, help='stop after this step (the schedule stays that of --steps): replays a run the time budget cut short')
    ap.add_argument('--time-budget', type=float, default=21 * 60, help='seconds; stops early, never changes the schedule')
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)

    train = np.fromfile(os.path.join(a.data, 'train.bin'), dtype='<u4').astype(np.int64)
    val = np.fromfile(os.path.join(a.data, 'val.bin'), dtype='<u4').astype(np.int64)
    used = np.unique(np.concatenate([train, val, np.array([BOS, *EOS_IDS])]))
    n_used = len(used)
    compact = np.full(VOCAB, n_used, dtype=np.int64)  # every unused id -> the shared row
    compact[used] = np.arange(n_used)
    train_c, val_c = torch.from_numpy(compact[train]), torch.from_numpy(compact[val])
    unused_shift = math.log(VOCAB - n_used)
    counts = torch.bincount(train_c, minlength=n_used + 1)
    negatives = torch.cat([torch.sort(counts, descending=True, stable=True).indices[:a.negatives], torch.tensor([n_used])])

    c = {
        'architectures': ['LlamaForCausalLM'], 'attention_bias': False, 'attention_dropout': 0.0,
        'bos_token_id': BOS, 'eos_token_id': EOS_IDS, 'head_dim': a.hidden // 4, 'hidden_act': 'silu',
        'hidden_size': a.hidden, 'initializer_range': 0.02, 'intermediate_size': a.intermediate,
        'max_position_embeddings': 131072, 'mlp_bias': False, 'model_type': 'llama',
        'num_attention_heads': 4, 'num_hidden_layers': a.layers, 'num_key_value_heads': 2,
        'pretraining_tp': 1, 'rms_norm_eps': 1e-5,
        'rope_scaling': {'factor': 8.0, 'high_freq_factor': 4.0, 'low_freq_factor': 1.0, 'original_max_position_embeddings': 8192, 'rope_type': 'llama3'},
        'rope_theta': 500000.0, 'tie_word_embeddings': True, 'torch_dtype': 'bfloat16',
        'transformers_version': '4.45.0', 'use_cache': True, 'vocab_size': VOCAB,
    }
    model = Model(c, n_used + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = max(1, a.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / a.steps)))))

    def batch(data, n):
        starts = rng.integers(0, len(data) - a.seq - 1, size=n)
        x = torch.stack([data[s:s + a.seq + 1] for s in starts])
        return x[:, :-1], x[:, 1:]

    vrng = np.random.default_rng(12345)
    vstarts = vrng.integers(0, len(val_c) - a.seq - 1, size=64)

    def evaluate():
        model.eval()
        with torch.no_grad():
            x = torch.stack([val_c[s:s + a.seq + 1] for s in vstarts])
            losses = [F.cross_entropy(model(x[i:i + 16, :-1], unused_shift).flatten(0, 1), x[i:i + 16, 1:].flatten()).item() for i in range(0, 64, 16)]
        model.train()
        return sum(losses) / len(losses)

    log, t0, step, loss_ema = [], time.time(), 0, None
    for step in range(1, a.steps + 1):
        x, y = batch(train_c, a.batch)
        loss = model.sampled_loss(x, y, negatives, unused_shift)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_ema = loss.item() if loss_ema is None else 0.95 * loss_ema + 0.05 * loss.item()
        elapsed = time.time() - t0
        if step % 10 == 0 or step == a.steps:
            entry = {'step': step, 'train_loss': round(loss_ema, 4), 'seconds': round(elapsed, 1)}
            if step % 100 == 0 or step == a.steps:
                entry['val_loss'] = round(evaluate(), 4)
            log.append(entry)
            print(json.dumps(entry), flush=True)
        if a.stop_after is not None and step >= a.stop_after:
            break
        if elapsed > a.time_budget:
            print(f'time budget reached at step {step}', flush=True)
            break
    val_loss = evaluate()
    seconds = time.time() - t0

    os.makedirs(a.out, exist_ok=True)
    emb = model.embed.weight.detach()
    full = emb[n_used].unsqueeze(0).repeat(VOCAB, 1)
    full[torch.from_numpy(used)] = emb[:n_used]
    tensors = [('model.embed_tokens.weight', full)]
    for i, l in enumerate(model.layers):
        p = f'model.layers.{i}.'
        tensors += [(p + 'input_layernorm.weight', l.input_layernorm.weight)]
        tensors += [(p + f'self_attn.{n}.weight', getattr(l, n).weight) for n in ('q_proj', 'k_proj', 'v_proj', 'o_proj')]
        tensors += [(p + 'post_attention_layernorm.weight', l.post_attention_layernorm.weight)]
        tensors += [(p + f'mlp.{n}.weight', getattr(l, n).weight) for n in ('gate_proj', 'up_proj', 'down_proj')]
    tensors += [('model.norm.weight', model.norm.weight)]
    write_safetensors(os.path.join(a.out, 'model.safetensors'), tensors)
    with open(os.path.join(a.out, 'config.json'), 'w') as f:
        json.dump(c, f, indent=2)
        f.write('\n')
    with open(os.path.join(a.out, 'generation_config.json'), 'w') as f:
        json.dump({'bos_token_id': BOS, 'do_sample': True, 'eos_token_id': EOS_IDS, 'temperature': 0.6, 'top_p': 0.9, 'transformers_version': '4.45.0'}, f, indent=2)
        f.write('\n')
    params = sum(t.numel() for _, t in tensors)
    summary = {'args': vars(a), 'params': params, 'used_ids': int(n_used), 'steps_done': step, 'seconds': round(seconds, 1),
               'tokens_seen': step * a.batch * a.seq, 'val_loss': round(val_loss, 4), 'val_ppl': round(math.exp(val_loss), 2),
               'torch': torch.__version__, 'log': log}
    with open(os.path.join(a.out, 'train-log.json'), 'w') as f:
        json.dump(summary, f, indent=2)
        f.write('\n')
    print(json.dumps({k: v for k, v in summary.items() if k != 'log'}), flush=True)


if __name__ == '__main__':
    main()
