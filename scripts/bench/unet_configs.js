'use strict';
// UNet configs the benchmarks build with random weights: Stable Diffusion 1.5's UNet (as in its
// unet/config.json) and the tiny test fixture's.
const fs = require('fs');
const path = require('path');

const SD15 = {
  _class_name: 'UNet2DConditionModel',
  act_fn: 'silu',
  attention_head_dim: 8,
  block_out_channels: [320, 640, 1280, 1280],
  center_input_sample: false,
  cross_attention_dim: 768,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
  norm_num_groups: 32,
  out_channels: 4,
  sample_size: 64,
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
};

function writeConfigs(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const sd15 = path.join(dir, 'unet-sd15.json');
  fs.writeFileSync(sd15, JSON.stringify(SD15));
  const tiny = path.join(__dirname, '..', '..', 'test', 'fixtures', 'models', 'tiny-sd1', 'unet', 'config.json');
  return { 'sd15-unet': { config: sd15, latent: 32, tokens: 77 }, 'tiny-unet': { config: tiny, latent: 8, tokens: 77 } };
}

module.exports = { writeConfigs, SD15 };
