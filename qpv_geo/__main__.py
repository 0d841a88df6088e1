from qpv_geo.cli import main

main()
