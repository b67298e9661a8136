"""Deployments of the compliance reports and the digests (``deployments.build.Spec`` data, like
the duty deployments, so ``serve`` and ``prefect.yaml`` come from the same place).

The quarterly report runs on the 3rd of the month after each quarter, when the last tasks of
the quarter are a few days past due (evidence of the last day still comes in); the annual one
on 5 January. The daily summary is scheduled every evening and skips days off by itself (the
work calendar knows holidays and make-up working days, which cron cannot).
"""

from __future__ import annotations

from deployments.duties import REPORT_TAG
from deployments.specs import Schedule, Spec

# Short and distinct in the UI's list (the full title is in the description).
QUARTERLY_REPORT, ANNUAL_REPORT = "履职考核报告·季度", "履职考核报告·年度"

BASIS = ("依据 / source：《德惠市教育局党政领导干部安全生产权利责任清单》一（六）、三（八）、一（八）、六（二）6"
         "（000_835012ae156b196b.txt）；《二道区教育系统 2021 年中小学（幼儿园）安全工作要点》3、17（002_8ab6cc7abff1c59e.txt）")


def specs() -> list[Spec]:
    return [
        Spec(
            name=QUARTERLY_REPORT,
            entrypoint="flows/compliance_report.py:compliance_report",
            description="安全工作履职考核报告（季度）：按单位、责任领导（包保/分管）和职责统计上一季度的应完成、按时、逾期、未完成、豁免任务，督办级别和未销号隐患；"
                        "生成 XLSX 工作簿与图表并发布为产物（年度考核“一票否决”、失职追责的依据）/ "
                        "quarterly compliance report per unit, leader and duty: XLSX, charts and artifacts\n" + BASIS,
            schedules=(Schedule("0 7 3 1,4,7,10 *", "after-each-quarter"),),
            tags=("pingan", REPORT_TAG, "report", "compliance"),
        ),
        Spec(
            name=ANNUAL_REPORT,
            entrypoint="flows/compliance_report.py:compliance_report",
            description="安全工作履职考核报告（年度）：上一年度的安全工作履职考核报告（年度安全生产考核）/ the annual compliance report for the previous year\n" + BASIS,
            parameters={"period": "previous-year"},
            schedules=(Schedule("0 7 5 1 *", "after-each-year"),),
            tags=("pingan", REPORT_TAG, "report", "compliance"),
        ),
        Spec(
            name="每周安全工作简报",
            entrypoint="flows/digests.py:weekly_digest",
            description="每周一上午向每位局领导发送其包保/分管单位及本人职责的简报：上周完成情况、逾期未完成、未来 7 天到期、未销号隐患 / "
                        "weekly digest to each bureau leader for the units they answer for",
            schedules=(Schedule("0 8 * * 1", "monday-morning"),),
            tags=("pingan", REPORT_TAG, "digest"),
        ),
        Spec(
            name="每日安全工作小结",
            entrypoint="flows/digests.py:daily_summary",
            description="每个工作日傍晚向安全科发送当日小结：今日到期、逾期与督办、待审核材料、隐患、发送失败（非工作日自动跳过）/ "
                        "daily summary to the safety section each working-day evening (days off are skipped)",
            schedules=(Schedule("0 18 * * *", "working-day-evening"),),
            tags=("pingan", REPORT_TAG, "digest"),
        ),
    ]
