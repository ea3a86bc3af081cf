"""Turns a CUDA source into C++ for the GPU emulator (cuda_runtime.h here).

    python3 translate.py in.cu out.cc

The only CUDA syntax the host compiler cannot take is the launch, so
`kernel<<<grid, block[, shared[, stream]]>>>(args);` becomes
`::saekit::emulator::launchKernel([&] { kernel(args); }, grid, block[, shared[, stream]]);`
(the emulated launch has finished when it returns, so the arguments may be taken by
reference), and ptx.h (the emulator's stand-in for native/cuda/ptx.cuh, which brings the rest)
is included first. The output keeps the input's line numbers; compile it with -I for the input's folder
(its quoted includes), for native/tests (gpu_emulator/ptx.h) and for native/tests/gpu_emulator
(<cuda_runtime.h>, <mma.h>, <cub/...>).
"""

import re
import sys

LAUNCH = re.compile(r"([A-Za-z_][\w:]*(?:<[^<>;()]*>)?)\s*<<<(.*?)>>>\s*\(", re.S)


def matching_paren(text, open_at):
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced parentheses after a launch")


def translate(source):
    out = []
    at = 0
    while True:
        match = LAUNCH.search(source, at)
        if match is None:
            out.append(source[at:])
            break
        kernel, config = match.group(1), match.group(2)
        args_open = match.end() - 1
        args_close = matching_paren(source, args_open)
        args = source[args_open + 1 : args_close]
        out.append(source[at : match.start()])
        out.append(f"::saekit::emulator::launchKernel([&] {{ {kernel}({args}); }}, {config})")
        at = args_close + 1
    return '#include "gpu_emulator/ptx.h"  // added by translate.py\n#line 1\n' + "".join(out)


def main():
    source_path, out_path = sys.argv[1], sys.argv[2]
    with open(source_path, encoding="utf-8") as f:
        source = f.read()
    text = translate(source).replace("#line 1\n", f'#line 1 "{source_path}"\n', 1)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
