"""The engine: what the rules mean and what they find, computed without writing. Facts
(`facts`), conditions and their logic line (`conditions`, `logic_line`, `condition_tree`),
a rule's verdict (`evaluate`), occurrences and their keys (`occurrences`) and the clock
triggers' calendar (`clock_triggers`). rules.services applies what it finds."""
