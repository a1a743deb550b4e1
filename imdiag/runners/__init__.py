"""The runners of the commands: they start masters, drive clients, and return result-model objects.

They print nothing; the command line renders what they return.
"""
