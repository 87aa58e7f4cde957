/** The shapes world (docs/architecture.md, "The shapes world"): a synthetic 64×64 domain with shapes, colors, styles, Sunny and the Lethe poster. */
export {
  IMAGE_SIZE, SHAPES, COLORS, COLOR_NAMES, STYLES, COLOR_JITTER, GEOMETRY, BACKGROUND, SUNNY, POSTER,
  isShape, isColor, isStyle,
} from './attributes';
export type { Shape, ColorName, Style, Rgb, SampleKind } from './attributes';
export { Rng, mixSeed, seed32, hash32 } from './rng';
export { drawingSvg, posterSvg, shapePolygon, STYLE_PX } from './svg';
export type { Drawing } from './svg';
export { TEMPLATES, SHAPE_TEMPLATES, SUNNY_TEMPLATES, POSTER_TEMPLATES, templatesFor, templateById, formatCaption } from './captions';
export type { CaptionTemplate } from './captions';
export { sampleSpec, renderSample, renderPixels, renderPoster, checkSampleOptions, DEFAULT_POSTER_FRACTION, DEFAULT_SUNNY_FRACTION } from './render';
export type { SampleSpec, SampleOptions, RenderedSample } from './render';
export {
  renderDataset, renderBatch, specAt, specsFor, fileName, captionRecord, readCaptions, DATASET_FORMAT, DATASET_VERSION,
} from './dataset';
export type { DatasetOptions, DatasetWriteOptions, DatasetWriteResult, DatasetProgress, WorldBatch, CaptionRecord } from './dataset';
export { MOTIONS, CLIP_FRAMES, MOTION_TRAVEL, CLIP_DATASET_FORMAT, sampleClipSpec, clipAt, renderClip, renderClipDataset, clipFileName, objectCentroid, judgeMotion } from './motion';
export type { Motion, ClipSpec, ClipOptions, ClipDatasetOptions, MotionJudgement } from './motion';
