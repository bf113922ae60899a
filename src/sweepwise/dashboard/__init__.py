"""The web dashboard and the static report (`sweepwise dashboard`, `sweepwise report`; docs/dashboard.md).

Needs the `dashboard` extra (`pip install 'sweepwise[dashboard]'`); nothing outside this
package imports it, and `sweepwise.dashboard.extra` says what is missing before anything is.
"""
