// The latency histogram, drawn as SVG from the batch summary's {edges, counts}.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 200;
const MARGIN = { top: 22, right: 16, bottom: 34, left: 44 };

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function label(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms)}`;
}

// markers: {p50: ms, p95: ms} drawn as dashed lines over the bars.
export function drawHistogram(target, histogram, markers = {}) {
  target.replaceChildren();
  if (!histogram || !histogram.counts.length) return;
  const { edges, counts } = histogram;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const tallest = Math.max(...counts);
  const barWidth = plotWidth / counts.length;
  const low = edges[0];
  const span = edges[edges.length - 1] - low || 1;
  const x = (ms) => MARGIN.left + ((ms - low) / span) * plotWidth;
  const baseline = MARGIN.top + plotHeight;

  counts.forEach((count, index) => {
    const height = tallest ? (count / tallest) * plotHeight : 0;
    const bar = svg("rect", {
      class: "bar",
      x: MARGIN.left + index * barWidth + 1,
      y: baseline - height,
      width: Math.max(1, barWidth - 2),
      height,
    });
    bar.append(svg("title", {}, `${label(edges[index])}–${label(edges[index + 1])} ms: ${count} call${count === 1 ? "" : "s"}`));
    target.append(bar);
  });

  target.append(svg("line", { class: "axis", x1: MARGIN.left, y1: baseline, x2: WIDTH - MARGIN.right, y2: baseline }));
  target.append(svg("line", { class: "axis", x1: MARGIN.left, y1: MARGIN.top, x2: MARGIN.left, y2: baseline }));
  target.append(svg("text", { class: "tick", x: MARGIN.left - 6, y: MARGIN.top + 4, "text-anchor": "end" }, String(tallest)));
  target.append(svg("text", { class: "tick", x: MARGIN.left - 6, y: baseline, "text-anchor": "end" }, "0"));
  const ticks = counts.length === 1 ? [0, 1] : [0, Math.floor(counts.length / 2), counts.length];
  for (const index of ticks) {
    target.append(svg("text", { class: "tick", x: MARGIN.left + index * barWidth, y: baseline + 16, "text-anchor": "middle" }, label(edges[index])));
  }
  target.append(svg("text", { class: "tick", x: WIDTH - MARGIN.right, y: HEIGHT - 2, "text-anchor": "end" }, "ms"));

  for (const [name, ms] of Object.entries(markers)) {
    if (ms === null || ms === undefined) continue;
    const at = Math.min(WIDTH - MARGIN.right, Math.max(MARGIN.left, x(ms)));
    target.append(svg("line", { class: `marker ${name}`, x1: at, y1: MARGIN.top, x2: at, y2: baseline }));
    // Labels above the bars, p50 to the left of its line and p95 to the right: never on top.
    const left = name === "p50";
    target.append(
      svg("text", { class: `marker-label ${name}`, x: left ? at - 3 : at + 3, y: MARGIN.top - 7, "text-anchor": left ? "end" : "start" }, name),
    );
  }
}
