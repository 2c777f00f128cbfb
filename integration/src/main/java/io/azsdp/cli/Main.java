package io.azsdp.cli;

import io.azsdp.cli.bench.BenchCommand;
import io.azsdp.cli.micro.MicroCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code bin/azsdp}: the AZ-SDP command line. */
@Command(name = "azsdp", mixinStandardHelpOptions = true, version = "AZ-SDP 0.1.0",
        description = "Asynchronous zero-copy SDP sockets for the JVM.",
        subcommands = {DemoCommand.class, ServerCommand.class, ClientCommand.class, BenchCommand.class,
            MicroCommand.class})
public final class Main implements Runnable {

    public static void main(String[] args) {
        System.exit(new CommandLine(new Main()).execute(args));
    }

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }
}
