from netsem.cli import main

main()
