"""The `chainrule` command (also `python -m chainrule`)."""
import argparse
import sys

from . import __version__


def _demo(args):
    from . import demo
    acc = demo.run()
    return 0 if acc > 0.9 else 1


def _info(args):
    import platform

    import numpy as np

    from . import backend
    print(f"chainrule {__version__}")
    print(f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"backend: {'cupy available' if backend._cupy is not None else 'numpy'}; "
          f"default float: {backend.default_float()}")
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            print(f"{pool['user_api']}: {pool['internal_api']} {pool.get('version')}, {pool['num_threads']} threads")
    except ImportError:
        pass
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="chainrule", description="A readable deep-learning library.")
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("demo", help="backprop on the lecture's 2-2-2 network, then train an MLP").set_defaults(fn=_demo)
    sub.add_parser("info", help="version, backend and BLAS threads").set_defaults(fn=_info)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
