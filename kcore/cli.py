"""The ``kcore`` command: ``up | server | agent | simulate | plugins | config show | proxy rules | version``.

Every failure a user can cause ends in one line on stderr naming the cause and
exit status 2 (1 for a runtime failure), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from kcore import __version__
from kcore.config import ConfigError, load_config, render_config
from kcore.errors import UserFacingError
from kcore.log import configure_logging


class CommandError(Exception):
    """A failure the user can fix; printed as one line."""


def default_data_dir() -> Path:
    """``$KCORE_DATA_DIR`` or ``~/.kcore``."""
    env = os.environ.get("KCORE_DATA_DIR")
    return Path(env) if env else Path.home() / ".kcore"


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="kcore.toml to read")
    parser.add_argument(
        "--data-dir", metavar="DIR", type=Path, default=None,
        help="where state, keys and logs live (default: ~/.kcore)",
    )
    parser.add_argument(
        "--node-name", metavar="NAME", default=None,
        help="this node's name (default: the host name)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kcore", description="A Kubernetes-compatible orchestrator built as a plugin microkernel."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    up = sub.add_parser("up", help="run a single-node cluster in one process")
    _add_common(up)
    server = sub.add_parser("server", help="run the control plane only")
    _add_common(server)
    agent = sub.add_parser("agent", help="join this machine to a cluster as a node")
    _add_common(agent)
    agent.add_argument("--server", required=True, metavar="URL", help="API server URL")
    agent.add_argument("--token", required=True, metavar="TOKEN", help="the server's join token")

    simulate = sub.add_parser("simulate", help="run N hollow nodes (fake runtime) in this process")
    simulate.add_argument("--server", required=True, metavar="URL", help="API server URL")
    simulate.add_argument("--token", required=True, metavar="TOKEN", help="the server's join token")
    simulate.add_argument("--nodes", required=True, type=int, metavar="N", help="how many hollow nodes")
    simulate.add_argument("--prefix", default="hollow-", help="node name prefix (default: hollow-)")
    simulate.add_argument("--start-index", type=int, default=0, metavar="I",
                          help="number of the first node (default: 0)")
    simulate.add_argument("--config", metavar="FILE", help="kcore.toml to read ([kubelet], [logging])")
    simulate.add_argument("--data-dir", metavar="DIR", type=Path, default=None,
                          help="parent of the nodes' data directories (default: a temporary one)")

    plugins = sub.add_parser("plugins", help="list discovered plugins and their status")
    plugins.add_argument("--config", metavar="FILE", help="kcore.toml (for plugin selection checks)")

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION")
    config_sub.required = True
    show = config_sub.add_parser("show", help="print the effective configuration as TOML")
    show.add_argument("--config", metavar="FILE", help="kcore.toml to read")

    proxy = sub.add_parser("proxy", help="service proxy tools")
    proxy_sub = proxy.add_subparsers(dest="proxy_command", metavar="ACTION")
    proxy_sub.required = True
    rules = proxy_sub.add_parser("rules", help="print the rules the configured proxy mode would install")
    rules.add_argument("--config", metavar="FILE", help="kcore.toml to read ([proxy] mode)")
    rules.add_argument("--kubeconfig", metavar="PATH", default=None,
                       help="admin kubeconfig (default: $KUBECONFIG, else <data dir>/kubeconfig.yaml)")

    sub.add_parser("version", help="print the kcore version")
    return parser


def _cmd_config_show(args: argparse.Namespace) -> int:
    sys.stdout.write(render_config(load_config(args.config)))
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from kcore.plugins import create_plugin_host, format_plugin_table

    load_config(args.config)  # a bad file is reported before listing
    host = create_plugin_host()
    records = host.records()
    sys.stdout.write(format_plugin_table(records) + "\n")
    return 1 if any(r.status != "loaded" for r in records) else 0


def _cmd_proxy_rules(args: argparse.Namespace) -> int:
    from kcore.proxy.runner import rules_from_kubeconfig

    kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG") or default_data_dir() / "kubeconfig.yaml"
    sys.stdout.write(asyncio.run(rules_from_kubeconfig(load_config(args.config), kubeconfig)))
    return 0


def _run_node(args: argparse.Namespace) -> int:
    from kcore.cluster import NodeOptions, run

    options = NodeOptions(
        role=args.command,
        config=load_config(args.config),
        config_path=args.config,
        data_dir=(args.data_dir or default_data_dir()).expanduser().resolve(),
        node_name=args.node_name or socket.gethostname(),
        server_url=getattr(args, "server", None),
        token=getattr(args, "token", None),
    )
    return asyncio.run(run(options))


def _cmd_simulate(args: argparse.Namespace) -> int:
    from kcore.simulate import SimulateOptions, run

    if args.nodes < 1:
        raise CommandError("--nodes must be at least 1")
    options = SimulateOptions(
        server_url=args.server, token=args.token, nodes=args.nodes, prefix=args.prefix,
        config=load_config(args.config), start_index=args.start_index,
        data_dir=args.data_dir.expanduser().resolve() if args.data_dir else None,
    )
    return asyncio.run(run(options))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Logs go to stderr from the start; long-running commands re-apply [logging].
    configure_logging("warning", "auto")
    try:
        if args.command == "version":
            sys.stdout.write(f"kcore {__version__}\n")
            return 0
        if args.command == "config":
            return _cmd_config_show(args)
        if args.command == "plugins":
            return _cmd_plugins(args)
        if args.command == "proxy":
            return _cmd_proxy_rules(args)
        if args.command == "simulate":
            return _cmd_simulate(args)
        return _run_node(args)
    except (ConfigError, CommandError, UserFacingError) as exc:
        sys.stderr.write(f"kcore: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
