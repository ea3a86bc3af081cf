// Monotone FISTA's bookkeeping between proximal steps, the same on every backend (the iteration
// is explained above cpu/fista_cpu.cc's solveRow): which of three iterate slots hold x (the
// kept iterate), p and z (the newest proximal point), the momentum t, and y = alpha x + beta p,
// the point the next proximal step starts from.
#pragma once

#include <math.h>

#include "host_device.h"

namespace saekit {

struct FistaMomentum {
  int xs = 0, ps = 0, zs = 1;  // p is x while beta is 0
  double t = 1.0;
  double alpha = 1.0, beta = 0.0;

  // After the step to z_k: change is P(z_k) - P(x_{k-1}), restart says the momentum pointed
  // against the step (O'Donoghue & Candes 2015), so t starts again at 1 and y_{k+1} = x_k.
  // Returns whether z_k was kept as x_k.
  SAEKIT_HOST_DEVICE bool advance(double change, bool restart) {
    const double tNext = 0.5 * (1.0 + ::sqrt(1.0 + 4.0 * t * t));
    const bool kept = change <= 0.0;
    if (kept) {
      // x_k = z_k: y = z + ((t - 1) / tNext) (z - x_{k-1}).
      const double momentum = restart ? 0.0 : (t - 1.0) / tNext;
      alpha = 1.0 + momentum;
      beta = -momentum;
      const int free = 3 - zs - xs;  // old p, or the unused slot while p is x
      ps = xs;
      xs = zs;
      zs = free;
    } else {
      // x_k = x_{k-1}: y = x + (t / tNext) (z - x).
      const double toward = restart ? 0.0 : t / tNext;
      alpha = 1.0 - toward;
      beta = toward;
      ps = zs;
      zs = 3 - xs - ps;
    }
    t = restart ? 1.0 : tNext;
    return kept;
  }
};

}  // namespace saekit
