"""Run the simulator standalone: `python -m bot.devtools.simulator` (and `scrmbot simulator`).

Credentials default to the WECOM_* variables scrmbot itself reads, so both sides agree.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from bot.app.serving import report_port_taken
from bot.devtools.simulator.demo import load_demo_corp
from bot.devtools.simulator.server import WeComSimulator
from bot.domain.clock import Clock, ManualClock, SystemClock

DEMO_CORP_ID = "wwscrmbotsim0001"
DEMO_SECRET = "sim-app-secret"
DEMO_CONTACT_SECRET = "sim-contact-secret"
DEMO_TOKEN = "scrmbotsim"
DEMO_AES_KEY = "c2NybWJvdC1zaW11bGF0b3ItZGVtby1hZXMta2V5MDE"  # 43 chars, decodes to 32 bytes


def build_parser() -> argparse.ArgumentParser:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="scrmbot simulator", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="An in-memory WeCom for trying scrmbot: the API scrmbot calls, a demo "
                    "corp, and encrypted callbacks to scrmbot. Credentials default to the "
                    "WECOM_* variables, else the demo corp's, so both sides agree.",
        epilog="Point scrmbot at it with WECOM_API_BASE=http://HOST:PORT/cgi-bin; drive it "
               "(scan, chat, clock, faults) over HTTP at http://HOST:PORT/sim/.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8081, help="port to listen on")
    parser.add_argument("--corp-id", default=env.get("WECOM_CORP_ID") or DEMO_CORP_ID,
                        help="the corp id (WECOM_CORP_ID)")
    parser.add_argument("--agent-id", type=int,
                        default=int(env.get("WECOM_AGENT_ID") or "1000002"),
                        help="the app's AgentId (WECOM_AGENT_ID)")
    parser.add_argument("--secret", default=env.get("WECOM_SECRET") or DEMO_SECRET,
                        help="the app's Secret (WECOM_SECRET)")
    parser.add_argument("--contact-secret",
                        default=env.get("WECOM_CONTACT_SECRET") or DEMO_CONTACT_SECRET,
                        help="the customer-contact Secret (WECOM_CONTACT_SECRET)")
    parser.add_argument("--token", default=env.get("WECOM_TOKEN") or DEMO_TOKEN,
                        help="the callback Token (WECOM_TOKEN)")
    parser.add_argument("--aes-key", default=env.get("WECOM_AES_KEY") or DEMO_AES_KEY,
                        help="the callback EncodingAESKey (WECOM_AES_KEY)")
    parser.add_argument("--callback-url", default=None,
                        help="scrmbot's POST /wecom/callback URL, where events are sent")
    parser.add_argument("--callback-timeout", type=float, default=5.0,
                        help="seconds to wait for scrmbot's answer, as WeCom does")
    parser.add_argument("--no-demo", action="store_true", help="start with an empty corp")
    parser.add_argument("--manual-clock", action="store_true",
                        help="freeze time; move it with POST /sim/clock {seconds}")
    return parser


def build_simulator(args: argparse.Namespace) -> WeComSimulator:
    clock: Clock = ManualClock() if args.manual_clock else SystemClock()
    secrets = {args.secret: "app", args.contact_secret: "contact"}
    sim = WeComSimulator(args.corp_id, args.agent_id, secrets, args.token, args.aes_key,
                         clock=clock, callback_url=args.callback_url,
                         callback_timeout_s=args.callback_timeout)
    if not args.no_demo:
        load_demo_corp(sim)
    return sim


async def serve(sim: WeComSimulator, host: str, port: int) -> None:
    """Serve until cancelled (Ctrl-C)."""
    base = await sim.start(host, port)
    print(f"WeCom simulator: API {base}, control {base.removesuffix('/cgi-bin')}/sim/")
    try:
        await asyncio.Event().wait()
    finally:
        await sim.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(serve(build_simulator(args), args.host, args.port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        return report_port_taken(exc, "scrmbot simulator", args.host, args.port,
                                 "a sandbox uses 8081 too; choose another with --port")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
