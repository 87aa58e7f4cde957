"""What Lethe's Python reference loops share (scripts/esd_reference.py, scripts/ca_reference.py)."""
import resource

import torch


def peak_rss_mib():
    """VmHWM (this process image's peak RSS): getrusage's maxrss survives fork and exec on Linux,
    so it would report the bench parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def attend(attn, q, k, v):
    """diffusers' attention output from projected q, k, v [B, N, heads*d] (AttnProcessor2_0 math)."""
    b, d = q.shape[0], k.shape[-1] // attn.heads
    split = lambda t: t.view(b, -1, attn.heads, d).transpose(1, 2)
    out = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v))
    out = out.transpose(1, 2).reshape(b, -1, attn.heads * d)
    return attn.to_out[1](attn.to_out[0](out))
