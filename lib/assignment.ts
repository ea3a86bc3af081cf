// The linear assignment problem (Kuhn's Hungarian algorithm in the shortest-augmenting-path
// form with row and column potentials, as in Jonker & Volgenant): a one-to-one matching of
// rows to columns of a weight matrix that maximises the total matched weight.

/**
 * For a weight matrix w [rows, cols] (row-major, any finite values), the columns matched to
 * each row (or -1 for a row left unmatched) in a matching of min(rows, cols) pairs whose total
 * weight is the largest possible. O(min^2 * max) time: each of the smaller side's items is
 * added by one shortest augmenting path search over the larger side.
 */
export function maxWeightMatching(w: Float64Array, rows: number, cols: number): Int32Array {
  if (rows <= cols) return minCostAssignment(w.map((value) => -value), rows, cols);
  // More rows than columns: match the columns (the smaller side) to rows, then invert.
  const transposed = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) transposed[j * rows + i] = -w[i * cols + j];
  }
  const byColumn = minCostAssignment(transposed, cols, rows);
  const match = new Int32Array(rows).fill(-1);
  for (let j = 0; j < cols; j++) match[byColumn[j]] = j;
  return match;
}

// Minimum-cost assignment of every one of n items to a distinct one of m >= n slots, with
// cost [n, m] row-major. Returns the slot of each item. Potentials u (items) and v (slots) keep
// every reduced cost cost(i, j) - u[i] - v[j] non-negative and zero along the matching; each new
// item is added along a shortest path of reduced costs (Dijkstra over slots), then the
// potentials are shifted so that the invariant holds again.
function minCostAssignment(cost: Float64Array, n: number, m: number): Int32Array {
  // Item and slot numbers are 1-based below; slot 0 is a virtual start for each search.
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const owner = new Int32Array(m + 1); // item holding each slot, 0 for free
  const previous = new Int32Array(m + 1); // previous slot on the shortest path
  const distance = new Float64Array(m + 1);
  const visited = new Uint8Array(m + 1);
  for (let item = 1; item <= n; item++) {
    owner[0] = item;
    let slot = 0;
    distance.fill(Infinity);
    visited.fill(0);
    do {
      visited[slot] = 1;
      const current = owner[slot];
      const uCurrent = u[current];
      const row = (current - 1) * m - 1; // cost of slot j (1-based) is cost[row + j]
      let delta = Infinity;
      let next = 0;
      for (let j = 1; j <= m; j++) {
        if (visited[j]) continue;
        const reduced = cost[row + j] - uCurrent - v[j];
        if (reduced < distance[j]) {
          distance[j] = reduced;
          previous[j] = slot;
        }
        if (distance[j] < delta) {
          delta = distance[j];
          next = j;
        }
      }
      // Only non-finite weights leave no reachable slot; without this the search would not end.
      if (next === 0) throw new RangeError('Expected finite weights for maxWeightMatching');
      for (let j = 0; j <= m; j++) {
        if (visited[j]) {
          u[owner[j]] += delta;
          v[j] -= delta;
        } else {
          distance[j] -= delta;
        }
      }
      slot = next;
    } while (owner[slot] !== 0);
    // Flip the matching along the path back to the virtual start.
    do {
      const before = previous[slot];
      owner[slot] = owner[before];
      slot = before;
    } while (slot !== 0);
  }
  const result = new Int32Array(n);
  for (let j = 1; j <= m; j++) if (owner[j] !== 0) result[owner[j] - 1] = j - 1;
  return result;
}
