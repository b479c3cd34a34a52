/**
 * Layer table and parameter counts of a model (works on a shape-only build: no tensors needed).
 */
import { countParams, type ParamCounts, type SegModel } from "./contrast.ts";
import { numel } from "./params.ts";

const fmt = (n: number) => n.toLocaleString("en-US");

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** Group key of a parameter name: `backbone.<module>` for the backbone, the head name otherwise. */
function partOf(name: string): string {
  const parts = name.split(".");
  return parts[0] === "backbone" ? `${parts[0]}.${parts[1]}` : parts[0];
}

export interface SummaryOptions {
  /** One row per tensor instead of one per module. */
  full?: boolean;
}

export function summarize(model: SegModel, o: SummaryOptions = {}): string {
  const opts = model.options;
  const lines: string[] = [];
  lines.push(
    `${opts.type}  backbone=${opts.backbone}  num_classes=${opts.numClasses}` +
      (model.hasProjection ? `  proj_dim=${opts.projDim}` : "") +
      `  padding=${opts.paddingMode}  align_corners=${opts.alignCorners}  drop_prob=${opts.dropProb}`,
  );
  lines.push("");
  if (o.full) {
    const w = Math.max(...model.store.params.map((p) => p.spec.name.length), 4);
    lines.push(`${pad("name", w)}  ${pad("shape (HWIO)", 20)}  ${pad("params", 12, true)}  trainable`);
    for (const p of model.store.params) {
      const s = p.spec;
      lines.push(
        `${pad(s.name, w)}  ${pad(`[${s.shape.join(", ")}]`, 20)}  ${pad(fmt(numel(s.shape)), 12, true)}  ${
          s.trainable ? "yes" : "no (BN stat)"
        }`,
      );
    }
  } else {
    const rows = new Map<string, { convs: number; bns: number; trainable: number; stats: number }>();
    for (const p of model.store.params) {
      const k = partOf(p.spec.name);
      const r = rows.get(k) ?? { convs: 0, bns: 0, trainable: 0, stats: 0 };
      if (p.spec.role === "conv_weight") r.convs++;
      if (p.spec.role === "bn_weight") r.bns++;
      if (p.spec.trainable) r.trainable += numel(p.spec.shape);
      else r.stats += numel(p.spec.shape);
      rows.set(k, r);
    }
    const w = Math.max(...[...rows.keys()].map((k) => k.length), 6);
    lines.push(
      `${pad("module", w)}  ${pad("convs", 6, true)}  ${pad("BNs", 5, true)}  ${
        pad("trainable", 12, true)
      }  ${pad("BN stats", 10, true)}`,
    );
    for (const [k, r] of rows) {
      lines.push(
        `${pad(k, w)}  ${pad(String(r.convs), 6, true)}  ${pad(String(r.bns), 5, true)}  ${
          pad(fmt(r.trainable), 12, true)
        }  ${pad(fmt(r.stats), 10, true)}`,
      );
    }
  }
  lines.push("");
  lines.push(...formatCounts(countParams(model.store), model.hasProjection));
  return lines.join("\n");
}

export function formatCounts(c: ParamCounts, hasProjection: boolean): string[] {
  const out = [
    `Trainable params: backbone ${fmt(c.trainable.backbone)} (${c.tensors.backbone} tensors), ` +
    `seg head ${fmt(c.trainable.cls_head)}` +
    (hasProjection ? `, proj head ${fmt(c.trainable.proj_head)}` : "") +
    `; total ${fmt(c.totalTrainable)}`,
    `BN running statistics: ${fmt(c.bnStats.backbone + c.bnStats.cls_head + c.bnStats.proj_head)}`,
    `Total params (paddle.flops convention: eval mode, no proj head, BN running stats included): ` +
    fmt(c.paddleFlopsTotal),
  ];
  return out;
}
