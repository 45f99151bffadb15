from qsec.cli import main

main()
