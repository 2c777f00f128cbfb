package io.azsdp.cli.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Runs each figure on its own thread under a watchdog. A figure that does not finish in time has its connections
 * reset and is recorded as failed (a hanging transport is reported, never waited for); so is one that throws or does
 * not verify. Every figure is printed as its RESULT or FAILED line as soon as it is known.
 */
final class FigureRunner {
    /** How long a figure's thread gets to end after its connections were reset. */
    private static final Duration GRACE = Duration.ofSeconds(5);

    /** A figure's measurement; may return several figures (e.g. percentiles). */
    interface Body {
        List<Figure> measure() throws Exception;
    }

    private final Duration timeout;
    private final Connections connections;
    private final List<Figure> figures = new ArrayList<>();

    FigureRunner(Duration timeout, Connections connections) {
        this.timeout = timeout;
        this.connections = connections;
    }

    List<Figure> figures() {
        return figures;
    }

    boolean allOk() {
        return figures.stream().allMatch(Figure::ok);
    }

    void run(Figure.Key key, Body body) {
        record(measure(key, body));
    }

    /** Prints and keeps {@code got}. */
    void record(List<Figure> got) {
        for (Figure f : got) {
            System.out.println(f.line());
        }
        System.out.flush();
        figures.addAll(got);
    }

    /** The figures of one measurement (a failed one if it timed out, threw or did not verify), not yet recorded. */
    List<Figure> measure(Figure.Key key, Body body) {
        CompletableFuture<List<Figure>> result = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                result.complete(body.measure());
            } catch (Throwable e) {
                result.completeExceptionally(e);
            }
        }, "bench-" + key.test());
        t.setDaemon(true);
        t.start();
        List<Figure> got;
        try {
            got = result.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            connections.abortAll();
            String why = "timed out after " + timeout.toSeconds() + " s";
            try {
                t.join(GRACE.toMillis());
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
            }
            StackTraceElement[] stack = t.getStackTrace();
            if (t.isAlive() && stack.length > 0) {
                why += "; still blocked " + GRACE.toSeconds() + " s after its connections were reset, at " + stack[0];
            }
            got = List.of(Figure.failed(key, why));
        } catch (ExecutionException e) {
            connections.abortAll();
            got = List.of(Figure.failed(key, e.getCause().toString().replace('\n', ' ')));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            connections.abortAll();
            got = List.of(Figure.failed(key, "interrupted"));
        }
        return got;
    }
}
