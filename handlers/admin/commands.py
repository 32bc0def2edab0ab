"""/admin reload and /audit: operating scrmbot from chat (admins only)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.app.context import Cmd, Router
from bot.chat.commands import CommandError
from bot.chat.parsing import Arg
from bot.chat.replies import Reply
from bot.rules.checker import RulesError
from bot.wecom.budget import PRIORITY_NAMES, SHARES
from models import AuditEntry, JobRun, OutboxMessage, OutboxStatus
from scheduler.runner import MAX_ATTEMPTS, JobBook

# What admins read in /outbox and /audit: the stored values stay English, like the logs.
OUTBOX_STATUS_NAMES = {"pending": "待发", "sending": "发送中", "sent": "已发",
                       "failed": "失败", "unknown": "结果不明"}
OUTBOX_KIND_NAMES = {"reply": "命令回复", "ticket": "工单通知", "digest": "日报", "weekly": "周报",
                     "dormant": "沉睡提醒", "breaker": "熔断通知", "payout": "结算通知",
                     "reversal": "冲销通知", "care": "关怀", "confirmation": "受理回复",
                     "oa_help": "公众号说明", "oa_reply": "公众号回复", "export": "导出文件",
                     "statement": "对账单"}
CHANNEL_NAMES = {"app": "应用消息", "oa": "公众号", "group_task": "群发任务", "file": "文件"}
AUDIT_OUTCOME_NAMES = {"ok": "成功", "refused": "未执行", "usage": "用法有误", "error": "出错",
                       "denied": "无权限"}
OUTBOX_CHOICES = {"failed": "failed", "失败": "failed", "pending": "pending", "待发": "pending"}

# What admins read in /admin limits: WeCom's own name for each API scrmbot calls.
API_NAMES = {
    "auth/getuserinfo": "网页登录身份",
    "department/list": "获取部门列表",
    "externalcontact/add_contact_way": "配置联系我",
    "externalcontact/add_corp_tag": "添加企业标签",
    "externalcontact/add_msg_template": "创建群发任务",
    "externalcontact/del_contact_way": "删除联系我",
    "externalcontact/del_corp_tag": "删除企业标签",
    "externalcontact/edit_corp_tag": "编辑企业标签",
    "externalcontact/get": "获取客户详情",
    "externalcontact/get_contact_way": "获取联系我配置",
    "externalcontact/get_corp_tag_list": "获取企业标签库",
    "externalcontact/get_groupmsg_list_v2": "获取群发记录",
    "externalcontact/get_unassigned_list": "获取待分配离职成员的客户",
    "externalcontact/list": "获取客户列表",
    "externalcontact/list_contact_way": "获取联系我列表",
    "externalcontact/mark_tag": "编辑客户企业标签",
    "externalcontact/resigned/transfer_customer": "离职继承",
    "externalcontact/resigned/transfer_result": "离职继承结果",
    "externalcontact/send_welcome_msg": "发送新客户欢迎语",
    "externalcontact/transfer_customer": "在职继承",
    "externalcontact/transfer_result": "在职继承结果",
    "externalcontact/update_contact_way": "更新联系我",
    "get_jsapi_ticket": "企业网页签名凭证",
    "media/get": "下载临时素材",
    "media/upload": "上传临时素材",
    "message/send": "发送应用消息",
    "ticket/get": "应用网页签名凭证",
    "user/get": "读取成员",
    "user/simplelist": "获取部门成员",
}

commands = Router("admin")
commands.alias("管理", "admin")
commands.alias("审计", "audit")


@commands.command("admin reload", "重新加载规则文件（文件有误时保留旧规则）", role="admin",
                  changes_data=True, examples=("/admin reload",), aliases=("admin 重载",))
async def admin_reload(cmd: Cmd) -> str:
    try:
        rules = cmd.ctx.rules.reload()
    except RulesError as exc:
        raise CommandError(f"规则文件有误，仍使用原规则。\n{exc}") from None
    return (f"规则已重新加载：{rules.source}，{len(rules.regions)} 个区域"
            f"（{'、'.join(rules.regions)}）。")


@commands.command("admin jobs", "定时任务：上次运行、失败与重试、下次运行", role="admin",
                  examples=("/admin jobs",), aliases=("admin 任务",))
async def admin_jobs(cmd: Cmd) -> Reply:
    book = cmd.ctx.locals.get(JobBook)
    latest = {spec_id: await JobRun.filter(job=spec_id).order_by("-id").first()
              for spec_id in book.records}
    retry_at = {spec_id: datetime.fromtimestamp(run.next_attempt_ms / 1000, UTC)
                for spec_id, run in latest.items() if run is not None}
    now = cmd.ctx.clock.now()
    # A slot that finished, is running, or was given up is not due again; a failed slot
    # still has retries (shown on its own line) and is due at the next tick.
    settled = {spec_id: run.slot if run is not None and (
        run.status != "failed" or run.attempts >= MAX_ATTEMPTS) else None
        for spec_id, run in latest.items()}
    return Reply(template="admin/jobs.txt.j2", data={
        "records": book.records, "latest": latest, "retry_at": retry_at,
        "max_attempts": MAX_ATTEMPTS,
        "next": {k: book.next_due(k, now, cmd.ctx, settled[k]) for k in book.records},
        "tz": cmd.ctx.settings.tz})


@commands.command("admin limits", "企业微信接口额度：各接口近一分钟、近一小时的调用量与暂停",
                  role="admin", examples=("/admin limits",), aliases=("admin 额度",))
async def admin_limits(cmd: Cmd) -> Reply:
    budget = cmd.ctx.wecom.budget
    uses = [u for u in await budget.use() if u.paused_s or any(w.used for w in u.windows)] \
        if budget is not None else []
    return Reply(template="admin/limits.txt.j2", data={
        "uses": uses, "budget": budget, "names": API_NAMES, "shares": SHARES,
        "priority_names": PRIORITY_NAMES, "now": cmd.ctx.clock.now(), "tz": cmd.ctx.settings.tz})


@commands.command("outbox", "发送队列：待发、失败的通知", role="admin",
                  args=[Arg("which", "失败（默认，含结果不明）或 待发", nargs="?")],
                  examples=("/outbox", "/outbox 待发"))
async def outbox(cmd: Cmd) -> Reply:
    which = OUTBOX_CHOICES.get(str(cmd.args.get("which", "failed")).lower())
    if which is None:
        raise CommandError("可选：失败（failed）或 待发（pending），例如 /outbox 待发。")
    statuses = [which] if which == "pending" else [OutboxStatus.FAILED, OutboxStatus.UNKNOWN]
    rows = await OutboxMessage.filter(status__in=statuses).order_by("-id").limit(20)
    counts = {s.value: await OutboxMessage.filter(status=s).count() for s in OutboxStatus}
    return Reply(template="admin/outbox.txt.j2", data={
        "rows": rows, "counts": counts, "which": which, "status_names": OUTBOX_STATUS_NAMES,
        "kind_names": OUTBOX_KIND_NAMES, "channel_names": CHANNEL_NAMES})


@commands.command("audit", "查看最近的操作记录", role="admin",
                  args=[Arg("count", "条数，默认 20", nargs="?")],
                  examples=("/audit", "/audit 50"))
async def audit_log(cmd: Cmd) -> Reply:
    raw = cmd.args.get("count", "20")
    if not str(raw).isdigit() or not 1 <= int(raw) <= 200:
        raise CommandError("条数应为 1 到 200 之间的数字，例如 /audit 50。")
    entries = await AuditEntry.all().order_by("-id").limit(int(raw))
    return Reply(template="admin/audit.txt.j2", data={
        "entries": entries, "tz": cmd.ctx.settings.tz, "outcome_names": AUDIT_OUTCOME_NAMES})
