"""The domain types every layer shares: search spaces, directions and checks of user
input, the events a trial sends, Pareto fronts, and what a sweep returns."""
