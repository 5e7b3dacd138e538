/**
 * Reports: a self-contained HTML page per episode (real frames, every candidate's imagined rollout with its
 * score, grounding drawn on the frames, metrics), a run index, and the image helpers behind them.
 * Usage: `writeFileSync('ep.html', renderEpisodeReport({ row, goal, observations, decisions }))`.
 */
export { escapeHtml, renderEpisodeReport, renderRunIndex } from './episode-report.js';
export type { EpisodeReport, RunIndexEntry, SeenFrame } from './episode-report.js';
export { drawGrounding, frameGrid, pngDataUri } from './images.js';
export type { GroundingOverlayOptions } from './images.js';
