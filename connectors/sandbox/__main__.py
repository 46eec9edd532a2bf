from connectors.sandbox.server import main

if __name__ == "__main__":
    main()
