from imdiag.entry import main

main()
