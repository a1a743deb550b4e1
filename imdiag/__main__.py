from imdiag.cli import main

main()
