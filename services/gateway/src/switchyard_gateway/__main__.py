from switchyard_gateway.cli import main

main()
