/**
 * A self-contained HTML report of one episode (no external files: images are PNG data: URIs, CSS inline, no
 * script). It shows, so that a person understands at a glance why the agent did what it did:
 * - the goal and the episode's metrics (success, SPL, SoftSPL, distances, steps, decision latency);
 * - the real frames, one per step;
 * - for each decision: the current view with the current-view grounding drawn on it (red tint and box), the
 *   reason and the chosen action, and every candidate's imagined rollout (horizon frames, grounding drawn on
 *   them), sorted by score, with the chosen candidate highlighted.
 *
 * Markup contract (checked by test/system/report.test.ts): each decision is an `article.decision` with
 * `data-candidates` and `data-horizon`; it holds `data-candidates` `tr.candidate` rows (one `tr.candidate.chosen`
 * when a candidate was acted on) and `data-candidates × data-horizon` `img.imagined`. Real frames are
 * `img.real`, current views `img.current`.
 *
 * Usage: `writeFileSync('episode.html', renderEpisodeReport({ row, goal, observations, decisions }))`.
 */
import type { DecisionRecord } from '../agent/agent.js';
import { percentile } from '../agent/metrics.js';
import type { EpisodeRow } from '../agent/results.js';
import type { CandidateReport } from '../planner/planner.js';
import type { EpisodeGoal } from '../sim-adapters/environment.js';
import type { Frame } from '../types.js';
import type { GroundingMap } from '../worldmodel/world-model.js';
import { drawGrounding, pngDataUri } from './images.js';

/** A frame the agent saw, with its step. */
export interface SeenFrame {
  readonly step: number;
  readonly rgb: Frame;
}

/** What `renderEpisodeReport` needs. */
export interface EpisodeReport {
  /** Page title (default from the task, seed and planner). */
  readonly title?: string;
  /** The episode's result row (metrics). */
  readonly row: EpisodeRow;
  readonly goal?: EpisodeGoal;
  /** The real frames, in step order. */
  readonly observations: readonly SeenFrame[];
  /** The planner's decisions (with `decision.candidates[].rollout` for imagined frames). */
  readonly decisions: readonly DecisionRecord[];
  /** Settings to list (planner, candidates, sampler steps, …). */
  readonly settings?: Readonly<Record<string, string | number | boolean>>;
  /** A note shown under the title (e.g. a fallback or a time-budget cut). */
  readonly notes?: readonly string[];
}

/** HTML-escape text for element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

function num(v: number | null | undefined, digits: number, unit = ''): string {
  return typeof v === 'number' && Number.isFinite(v) ? `${v.toFixed(digits)}${unit}` : '–';
}

function currentGrounding(candidates: readonly CandidateReport[]): GroundingMap | undefined {
  return candidates.find((c) => c.rollout?.currentGrounding !== undefined)?.rollout?.currentGrounding;
}

const CSS = `
:root { color-scheme: light; --chosen: #1a7f37; --muted: #57606a; --line: #d0d7de; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1f2328; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.sub { color: var(--muted); margin: 0 0 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; color: #fff; }
.ok { background: var(--chosen); } .fail { background: #cf222e; }
table { border-collapse: collapse; } td, th { padding: 3px 8px; text-align: left; vertical-align: middle; }
table.metrics td:first-child, table.settings td:first-child { color: var(--muted); }
img { image-rendering: pixelated; display: block; }
img.real { width: 64px; height: 64px; } img.current { width: 128px; height: 128px; } img.imagined { width: 72px; height: 72px; }
img.goal { width: 128px; height: 128px; }
.strip { display: flex; flex-wrap: wrap; gap: 4px; }
.strip figure { margin: 0; } .strip figcaption { font-size: 10px; color: var(--muted); text-align: center; }
article.decision { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin: 12px 0; }
article.decision header { display: flex; gap: 14px; align-items: flex-start; margin-bottom: 8px; }
.why b { font-size: 15px; } .detail { color: var(--muted); font-size: 12px; max-width: 900px; }
table.candidates td { border-top: 1px solid var(--line); }
tr.candidate.chosen { background: #dafbe1; outline: 2px solid var(--chosen); }
tr.candidate.chosen td.label::before { content: "▶ chosen  "; color: var(--chosen); font-weight: 700; }
.frames { display: flex; gap: 3px; }
.terms { font-size: 11px; color: var(--muted); }
code { font-size: 12px; }
.legend { font-size: 12px; color: var(--muted); max-width: 900px; }
`;

function metricsTable(row: EpisodeRow): string {
  const lat = row.decisionLatenciesMs;
  const cells: [string, string][] = [
    ['success', row.success ? '<span class="badge ok">success</span>' : '<span class="badge fail">failure</span>'],
    ['status / end', `${escapeHtml(row.status)} / ${escapeHtml(row.endReason ?? '–')}${row.reason !== undefined ? ` (${escapeHtml(row.reason)})` : ''}`],
    ['SPL', num(row.spl, 3)],
    ['SoftSPL', num(row.softSpl, 3)],
    ['distance to goal', `${num(row.initialDistanceToGoal, 2, ' m')} → ${num(row.distanceToGoal, 2, ' m')}`],
    ['shortest path ℓ / path taken p', `${num(row.shortestPathLength, 2, ' m')} / ${num(row.pathLength, 2, ' m')}`],
    ['steps / collisions', `${row.steps} / ${row.collisions}`],
    ['decisions', String(lat.length)],
    ['decision latency p50 / p95', `${num(percentile(lat, 0.5), 1, ' ms')} / ${num(percentile(lat, 0.95), 1, ' ms')}`],
    ['episode wall time', num(row.durationMs / 1000, 1, ' s')],
  ];
  return `<table class="metrics">${cells.map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${v}</td></tr>`).join('')}</table>`;
}

function goalBlock(goal: EpisodeGoal | undefined): string {
  if (goal === undefined) return '<p>No goal was reported by the simulator.</p>';
  const parts = [`<p>Task <b>${escapeHtml(goal.task)}</b>`];
  if (goal.category !== undefined) parts.push(` · find a <b>${escapeHtml(goal.category)}</b>`);
  if (goal.position !== undefined) parts.push(` · reach (${goal.position.map((v) => v.toFixed(2)).join(', ')})`);
  parts.push('</p>');
  if (goal.image !== undefined) parts.push(`<figure><img class="goal" alt="goal image" src="${pngDataUri(goal.image)}"><figcaption>goal image</figcaption></figure>`);
  return parts.join('');
}

function framesStrip(observations: readonly SeenFrame[]): string {
  if (observations.length === 0) return '<p>No frames were recorded.</p>';
  const figs = observations.map(
    (o) => `<figure><img class="real" alt="step ${o.step}" title="step ${o.step}" src="${pngDataUri(o.rgb)}"><figcaption>${o.step}</figcaption></figure>`,
  );
  return `<div class="strip">${figs.join('')}</div>`;
}

function termsText(terms: Readonly<Record<string, number>>): { short: string; full: string } {
  const main = ['goal', 'explore', 'safety', 'blocked', 'revisit'].filter((k) => typeof terms[k] === 'number' && (k !== 'blocked' && k !== 'revisit' ? true : terms[k] !== 0));
  const short = main.map((k) => `${k} ${num(terms[k], 3)}`).join(' · ');
  const full = Object.entries(terms)
    .map(([k, v]) => `${k} = ${num(v, 4)}`)
    .join('\n');
  return { short, full };
}

function decisionBlock(record: DecisionRecord, frameAt: (step: number) => Frame | undefined): string {
  const d = record.decision;
  const candidates = d?.candidates ?? [];
  const withFrames = candidates.filter((c) => (c.rollout?.frames.length ?? 0) > 0);
  const horizon = Math.max(0, ...withFrames.map((c) => c.rollout?.frames.length ?? 0));
  const chosen = d?.chosen ?? -1;
  const actions = record.actions.map((a) => a.name).join(', ');
  const frame = frameAt(record.step);
  const cg = currentGrounding(candidates);
  const current =
    frame !== undefined
      ? `<figure><img class="current" alt="current view, step ${record.step}" src="${pngDataUri(cg !== undefined ? drawGrounding(frame, cg) : frame)}"><figcaption>${cg !== undefined ? 'now, with current-view grounding' : 'now'}</figcaption></figure>`
      : '';
  const order = candidates.map((c, i) => ({ c, i })).sort((a, b) => (Number.isFinite(b.c.score) ? b.c.score : -Infinity) - (Number.isFinite(a.c.score) ? a.c.score : -Infinity));
  const rows = order.map(({ c, i }) => {
    const frames = c.rollout?.frames ?? [];
    const grounding = c.rollout?.grounding;
    const imgs = frames.map((f, h) => {
      const g = grounding?.[h];
      const shown = g !== undefined ? drawGrounding(f, g) : f;
      return `<img class="imagined" alt="candidate ${i}, imagined frame ${h + 1}" title="t+${h + 1}" src="${pngDataUri(shown)}">`;
    });
    const t = termsText(c.terms);
    return (
      `<tr class="candidate${i === chosen ? ' chosen' : ''}" data-index="${i}">` +
      `<td class="label">#${i}</td><td><code>${escapeHtml(c.instruction.actions.join(' → '))}</code></td>` +
      `<td title="${escapeHtml(t.full)}"><b>${num(c.score, 3)}</b><div class="terms">${escapeHtml(t.short)}</div></td>` +
      `<td><div class="frames">${imgs.join('')}</div></td></tr>`
    );
  });
  const reason = d?.reason ?? 'no diagnostics';
  const chosenText = chosen >= 0 ? `candidate #${chosen}` : reason === 'stop' ? 'stop (no candidate)' : `no candidate (${escapeHtml(reason)})`;
  return (
    `<article class="decision" id="decision-${record.index}" data-index="${record.index}" data-step="${record.step}" ` +
    `data-candidates="${candidates.length}" data-horizon="${horizon}" data-chosen="${chosen}" data-reason="${escapeHtml(reason)}">` +
    `<header>${current}<div class="why"><b>Decision ${record.index} · step ${record.step} · ${escapeHtml(reason)}</b>` +
    `<div>executes <code>${escapeHtml(actions)}</code> · ${chosenText} · ${num(record.latencyMs, 0, ' ms')} · context ${record.contextSize} frames</div>` +
    (d?.detail !== undefined ? `<div class="detail">${escapeHtml(d.detail)}</div>` : '') +
    `</div></header>` +
    (rows.length > 0
      ? `<table class="candidates"><thead><tr><th></th><th>candidate instruction</th><th>score</th><th>imagined rollout (t+1 … t+${horizon})</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
      : '<p class="detail">No candidates were imagined for this decision.</p>') +
    `</article>`
  );
}

/** Render one episode's report as a complete HTML document (see the module comment). */
export function renderEpisodeReport(report: EpisodeReport): string {
  const { row, goal } = report;
  const title =
    report.title ??
    `${row.task ?? 'episode'}${row.seed !== undefined ? ` · seed ${row.seed}` : ''} · ${row.planner}${goal?.category !== undefined ? ` · ${goal.category}` : ''}`;
  const byStep = new Map<number, Frame>();
  for (const o of report.observations) byStep.set(o.step, o.rgb);
  const settings = Object.entries(report.settings ?? {});
  const decisions = report.decisions.map((r) => decisionBlock(r, (s) => byStep.get(s)));
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title>`,
    `<style>${CSS}</style></head><body>`,
    `<h1>${escapeHtml(title)}</h1>`,
    `<p class="sub">v4s-nav episode report · key <code>${escapeHtml(row.key)}</code> · started ${escapeHtml(row.startedAt)}</p>`,
    ...(report.notes ?? []).map((n) => `<p class="detail">${escapeHtml(n)}</p>`),
    '<h2>Goal</h2>',
    goalBlock(goal),
    '<h2>Metrics</h2>',
    metricsTable(row),
    settings.length > 0
      ? `<h2>Settings</h2><table class="settings">${settings.map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(String(v))}</td></tr>`).join('')}</table>`
      : '',
    `<h2>What the agent saw (${report.observations.length} frames)</h2>`,
    framesStrip(report.observations),
    `<h2>Decisions (${report.decisions.length})</h2>`,
    '<p class="legend">Each decision: the current view (left; red tint and box = where the goal is grounded in it), why the planner acted, and every candidate instruction with its imagined future (t+1 … t+H; red = the grounding output for the goal category on each imagined frame), best score first. The highlighted row is the candidate whose first action(s) were executed. Hover a score for all its terms.</p>',
    ...decisions,
    '</body></html>',
  ].join('\n');
}

/** One episode's line in a run's index page. */
export interface RunIndexEntry {
  /** The episode report's file name, relative to the index. */
  readonly href: string;
  /** The PNG strip's file name, relative to the index. */
  readonly strip?: string;
  readonly row: EpisodeRow;
  readonly goal?: EpisodeGoal;
}

/** A small index page of a run: the aggregate table (preformatted) and a link per episode. */
export function renderRunIndex(title: string, table: string, entries: readonly RunIndexEntry[], notes: readonly string[] = []): string {
  const rows = entries.map(
    (e) =>
      `<tr><td><a href="${escapeHtml(e.href)}">${escapeHtml(e.row.key)}</a></td><td>${escapeHtml(e.goal?.category ?? '')}</td>` +
      `<td>${e.row.success ? '<span class="badge ok">success</span>' : '<span class="badge fail">failure</span>'}</td>` +
      `<td>${num(e.row.spl, 3)}</td><td>${e.row.steps}</td>${e.strip !== undefined ? `<td><a href="${escapeHtml(e.strip)}">frames</a></td>` : '<td></td>'}</tr>`,
  );
  return [
    '<!doctype html>',
    `<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${CSS}</style></head><body>`,
    `<h1>${escapeHtml(title)}</h1>`,
    ...notes.map((n) => `<p class="detail">${escapeHtml(n)}</p>`),
    `<pre>${escapeHtml(table)}</pre>`,
    `<table><thead><tr><th>episode</th><th>goal</th><th>result</th><th>SPL</th><th>steps</th><th></th></tr></thead><tbody>${rows.join('')}</tbody></table>`,
    '</body></html>',
  ].join('\n');
}
