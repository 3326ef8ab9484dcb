"""The account: the credit balance (free)."""

from __future__ import annotations

from typing import Annotated

from mcp.types import CallToolResult

from pixverse_mcp.delivery import structured
from pixverse_mcp.results import BalanceResult
from pixverse_mcp.runtime import Runtime
from pixverse_mcp.tooling import READ_ONLY, PixVerseServer, register


def install(server: PixVerseServer, runtime: Runtime) -> None:
    """Register get_balance."""

    @register(server, title="Get the credit balance", annotations=READ_ONLY)
    async def get_balance() -> Annotated[CallToolResult, BalanceResult]:
        """Show the PixVerse account's credits (monthly, package and total). Free."""
        balance = await runtime.api.balance()
        monthly, package = balance.credit_monthly or 0, balance.credit_package or 0
        return structured(
            BalanceResult(
                account_id=str(balance.account_id) if balance.account_id is not None else None,
                credit_monthly=monthly,
                credit_package=package,
                total=monthly + package,
                message=f"{monthly + package} credits left ({monthly} monthly, {package} from packages).",
            )
        )
