"""`python -m searchtrail`: the same entry point as the installed `searchtrail` command."""

from searchtrail.launcher import main

main()
