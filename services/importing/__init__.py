"""Importing a school's people and its goal sets from CSV files (`portfolio-bot import`).

An import is all-or-nothing: the whole file is read and checked, against itself and against
what the school already holds, before a single row is written, and every problem is reported
with its file, line and column (`csv_reading`). Nothing here commits: the caller's transaction
does, so a failure later on still leaves the database as it was. The people file is in
`people`, goal sets in `goal_sets`; their rows are written by storage.roster and
storage.goal_sets.
"""
