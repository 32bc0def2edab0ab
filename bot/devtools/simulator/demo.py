"""A small demo corp so a newcomer can try scrmbot in sandbox mode without a WeCom account."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.devtools.simulator.server import WeComSimulator

DEPARTMENTS: list[tuple[int, str, int]] = [
    (1, "总部", 0),
    (2, "华北区", 1),
    (3, "北京朝阳店", 2),
    (4, "华东区", 1),
    (5, "上海徐汇店", 4),
    (6, "西南区", 1),
    (7, "成都高新店", 6),
    (8, "安装服务队", 6),
]

MEMBERS: list[tuple[str, str, int, str]] = [
    ("admin", "陈总", 1, "总经理"),
    ("zhangsan", "张三", 3, "销售顾问"),
    ("lisi", "李四", 5, "客服专员"),
    ("zhaoliu", "赵六", 2, "华北区经理"),
    ("sunqi", "孙七", 4, "华东区经理"),
    ("wangwu", "王五", 8, "安装师傅"),
    ("zhouba", "周八", 7, "成都店长"),
]

TAG_GROUPS: dict[str, list[str]] = {"客户等级": ["VIP", "普通"]}


def load_demo_corp(sim: WeComSimulator) -> dict[str, str]:
    """Fill `sim` with the demo directory and tags; returns tag name -> tag id."""
    for dept_id, name, parent in DEPARTMENTS:
        sim.add_department(dept_id, name, parent_id=parent)
    for n, (userid, name, dept, position) in enumerate(MEMBERS, start=1):
        sim.add_user(userid, name, [dept], mobile=f"138{n:08d}", position=position)
    tag_ids: dict[str, str] = {}
    for group, tags in TAG_GROUPS.items():
        tag_ids.update(sim.add_corp_tag_group(group, tags))
    return tag_ids
