"""Analytics (issue 8): historical receipts in, reports out.

Each report is a module here that computes its rows from the database (SQLAlchemy Core
reads, Polars where a columnar pass pays) and returns ``services.exports.Table`` values,
so that one table feeds the console page, the admin API and ``kopilka report NAME``.
Pure arithmetic that needs no database (scores, quantiles, rules) lives in ``domain``.
"""
