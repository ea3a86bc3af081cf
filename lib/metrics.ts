import { checkMatrix, type Matrix } from './matrix.js';

function unitRows(m: Matrix): Float64Array {
  const out = new Float64Array(m.rows * m.cols);
  for (let r = 0; r < m.rows; r++) {
    let norm = 0;
    for (let c = 0; c < m.cols; c++) norm += m.data[r * m.cols + c] ** 2;
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let c = 0; c < m.cols; c++) out[r * m.cols + c] = m.data[r * m.cols + c] * scale;
  }
  return out;
}

/**
 * Mean max cosine similarity of a learned dictionary to the true features:
 * MMCS = (1 / |truth|) * sum over true rows t of max over learned rows l of cos(t, l),
 * with the signed cosine (a learned row pointing the opposite way does not count).
 * This is HoagyC/sparse_coding's `mean_max_cosine_similarity(ground_truth, learned)`:
 * it asks how well each true feature is recovered, not whether every learned row is useful.
 */
export function mmcs(learned: Matrix, truth: Matrix): number {
  const l = checkMatrix('learned', learned, undefined, 1);
  const t = checkMatrix('truth', truth, { value: l.cols, label: 'learned.cols' }, 1);
  const a = unitRows(l);
  const b = unitRows(t);
  const d = l.cols;
  let total = 0;
  for (let i = 0; i < t.rows; i++) {
    let best = -Infinity;
    for (let j = 0; j < l.rows; j++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += b[i * d + k] * a[j * d + k];
      if (dot > best) best = dot;
    }
    total += best;
  }
  return total / t.rows;
}
