"""The sandbox survives a restart: its database outlives the in-memory simulator, so the
simulated corp is restored from it (issue 11, item 3), and taken ports get a message."""

from __future__ import annotations

import io
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.devtools import sandbox as sandbox_module
from bot.devtools.console import Console
from bot.devtools.sandbox import PortTaken, check_ports, start_sandbox
from bot.devtools.simulator.pictures import demo_png
from models import Channel, CorpTag, Customer, CustomerTag, Order

EXAMPLES = Path(__file__).resolve().parent.parent / "bot" / "devtools" / "examples"


def free_port_block() -> int:
    """A port whose next two are free too."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        try:
            check_ports(port)
        except PortTaken:
            continue
        return port
    raise AssertionError("no three free ports in a row")


async def run(lines: list[str], port: int,
              check: Callable[[str], Awaitable[None]] | None = None) -> str:
    """Start the sandbox, type `lines` into its console, `check` what it printed (while the
    database is still open), and quit."""
    sandbox, runner = await start_sandbox(port)
    out = io.StringIO()
    console = Console(sandbox, out=out, colour=False)
    try:
        for line in lines:
            await console.execute(line)
        if check is not None:
            await check(out.getvalue() + (f"\nRESTORED {sandbox.restored}"
                                          if sandbox.restored else ""))
    finally:
        await sandbox.sim.close()
        if sandbox.oa is not None:
            await sandbox.oa.close()
        await runner.cleanup()
    return str(out.getvalue()) + (f"\nRESTORED {sandbox.restored}" if sandbox.restored else "")


async def test_quit_and_start_again_keeps_the_corp(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_module, "SANDBOX_DIR", tmp_path)
    port = free_port_block()
    first = await run(["as zhangsan: /channel new 抖音直播 tags=直播高意向用户 staff=zhangsan",
                       "scan 抖音直播 as 王女士",
                       "as zhangsan: /tag add 王女士 门店:朝阳",
                       "clock +1h"], port)
    assert "渠道活码已创建" in first and "RESTORED" not in first
    await run(["scan 抖音直播 as 李女士", "as zhangsan: /tag add 王女士 VIP 门店:朝阳",
               "as zhangsan: /channel off 抖音直播"], port, check=after_restart)
    assert (tmp_path / "clock_offset").read_text(encoding="utf-8") == "3600.0"


async def after_restart(second: str) -> None:
    # 直播高意向用户, 时段:…, 门店:朝阳 put back; the demo's 客户等级 VIP and 普通 given our ids
    assert "RESTORED 5 corp tags, 1 channels, 1 customers" in second
    assert "error" not in second.lower() and "E-" not in second
    lisi = await Customer.get_or_none(name="李女士")
    assert lisi is not None and lisi.source_state is not None  # the old channel still scans
    assert await CustomerTag.filter(customer=lisi, name="直播高意向用户", synced=True).exists()
    assert "已停用，二维码失效" in second
    assert not (await Channel.get(name="抖音直播")).active
    assert await CorpTag.filter(group_name="门店", name="朝阳").count() == 1
    assert await CorpTag.filter(name="VIP").count() == 1  # not a second VIP after the restart


def test_a_taken_port_is_said_plainly() -> None:
    port = free_port_block()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port + 1))
        busy.listen()
        with pytest.raises(PortTaken, match=rf"port {port + 1} \(the WeCom simulator\).*PORT="):
            check_ports(port)


def test_a_sandbox_that_just_quit_leaves_its_ports_free() -> None:
    """Quit and `make run` at once: the old server's closed connections linger in TIME_WAIT
    on its port, which must not count as taken (it did: "port 8081 is already in use")."""
    port = free_port_block()
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port + 1))
        listener.listen()
        client = socket.create_connection(("127.0.0.1", port + 1))
        served, _ = listener.accept()
        served.close()  # the server closes first: its side of the connection is in TIME_WAIT
        client.close()
    check_ports(port)


async def test_the_example_order_files_land_on_demo_customers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_module, "SANDBOX_DIR", tmp_path)
    port = free_port_block()
    sandbox, runner = await start_sandbox(port, demo=True)
    out = io.StringIO()
    console = Console(sandbox, out=out, colour=False)
    try:
        await console.execute(f"import generic {EXAMPLES / 'orders-generic.csv'}")
        await console.execute(f"import taobao {EXAMPLES / 'orders-taobao.csv'}")
        await console.execute("import jd /no/such/file.csv")
        printed = out.getvalue()
        assert "新增 10 单" in printed and "拒绝 1 行" in printed  # one bad amount on purpose
        assert "第 13 行：实付金额 最多两位小数" in printed
        assert "新增 4 单" in printed  # the 淘宝 file
        assert "找不到文件 /no/such/file.csv" in printed
        joined = await Order.filter(buyer_phone="13800138001").values_list("customer_id",
                                                                           flat=True)
        demo = await Customer.get(mobile="13800138001")
        assert set(joined) == {demo.id} and demo.external_userid  # a WeCom contact
        assert len(joined) == 2  # 官网商城 and 天猫旗舰店: one customer, both platforms
    finally:
        await sandbox.sim.close()
        if sandbox.oa is not None:
            await sandbox.oa.close()
        await runner.cleanup()


async def test_a_member_sends_a_photo_from_the_console(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_module, "SANDBOX_DIR", tmp_path)
    picture = tmp_path / "验收.png"
    picture.write_bytes(demo_png(5))
    out = await run(["photo zhangsan", f"photo zhangsan {picture}",
                     "photo zhangsan /no/such/file.png", "photo nobody"], free_port_block())
    assert out.count("zhangsan sent a picture") == 2
    assert "照片" in out.split("zhangsan sent a picture", 1)[1]  # the app answered
    assert "/no/such/file.png: not a .jpg/.png/.gif/.webp file" in out
    assert "no member 'nobody'" in out
