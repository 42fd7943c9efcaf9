"""Job execution: the queue, the progress bus and the backtest job function."""
