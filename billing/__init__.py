"""Pure billing domain: money, prices, bills, refunds, ledger state. No I/O lives here."""
