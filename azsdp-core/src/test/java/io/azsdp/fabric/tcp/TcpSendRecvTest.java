package io.azsdp.fabric.tcp;

import io.azsdp.fabric.FabricException;
import io.azsdp.fabric.FabricOptions;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.tcp.TcpTestSupport.Completion;
import io.azsdp.fabric.tcp.TcpTestSupport.Pair;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32;

import static io.azsdp.fabric.tcp.TcpTestSupport.WAIT_SECONDS;
import static io.azsdp.fabric.tcp.TcpTestSupport.options;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TcpSendRecvTest {
    private static final int MAX_MSG = 64 * 1024;
    private static final int SLOTS = 32;

    @Test
    void fabricIdentity() {
        TcpFabric f = new TcpFabric();
        assertEquals("tcp", f.name());
        assertNull(f.unavailableReason());
    }

    /** Random sizes 0..maxMessageSize, each with its CRC, arrive complete and in order. */
    @Test
    void randomSizedMessagesArriveInOrderWithChecksums() throws Exception {
        int messages = 3000;
        Random rnd = new Random(42);
        int[] sizes = new int[messages];
        long[] crcs = new long[messages];
        try (Pair p = new Pair(options(MAX_MSG))) {
            ByteBuffer sendMem = ByteBuffer.allocateDirect(SLOTS * MAX_MSG);
            ByteBuffer recvMem = ByteBuffer.allocateDirect(SLOTS * MAX_MSG);
            MemoryRegion sendRegion = p.client.register(sendMem);
            MemoryRegion recvRegion = p.server.register(recvMem);
            for (int s = 0; s < SLOTS; s++) {
                p.server.postRecv(s, recvRegion, s * MAX_MSG, MAX_MSG);
            }

            CompletableFuture<Integer> receiver = CompletableFuture.supplyAsync(() -> {
                try {
                    CRC32 crc = new CRC32();
                    for (int i = 0; i < messages; i++) {
                        Completion c = p.serverEvents.next();
                        assertEquals(Opcode.RECV, c.opcode());
                        assertEquals(WcStatus.SUCCESS, c.status(), "message " + i);
                        assertEquals(i % SLOTS, c.wrId(), "receives complete in posting order");
                        assertEquals(sizes[i], c.byteLen(), "size of message " + i);
                        crc.reset();
                        crc.update(recvRegion.buffer().duplicate().position((int) c.wrId() * MAX_MSG)
                                .limit((int) c.wrId() * MAX_MSG + c.byteLen()));
                        assertEquals(crcs[i], crc.getValue(), "checksum of message " + i);
                        p.server.postRecv(c.wrId(), recvRegion, (int) c.wrId() * MAX_MSG, MAX_MSG);
                    }
                    return messages;
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });

            CRC32 crc = new CRC32();
            byte[] data = new byte[MAX_MSG];
            for (int i = 0; i < messages; i++) {
                int slot = i % SLOTS;
                if (i >= SLOTS) { // the slot is reusable once the send that used it completed (sends complete in order)
                    Completion c = p.clientEvents.next();
                    assertEquals(new Completion(Opcode.SEND, i - SLOTS, sizes[i - SLOTS], WcStatus.SUCCESS), c);
                }
                int size = i % 100 == 0 ? (i / 100 % 2 == 0 ? 0 : MAX_MSG) : rnd.nextInt(MAX_MSG + 1);
                rnd.nextBytes(data);
                sizes[i] = size;
                crc.reset();
                crc.update(data, 0, size);
                crcs[i] = crc.getValue();
                sendRegion.buffer().put(slot * MAX_MSG, data, 0, size);
                p.client.postSend(i, sendRegion, slot * MAX_MSG, size);
            }
            assertEquals(messages, receiver.get(WAIT_SECONDS, TimeUnit.SECONDS));
            assertTrue(p.client.isOpen());
            assertTrue(p.server.isOpen());
        }
    }

    /**
     * A gathered SEND goes out as one message of head then body, taken from both regions when written: its completion
     * comes only once the socket has its bytes (here, with the receiver not reading, only after the receiver starts),
     * and the sender rewrites the body region as soon as it completes. Every byte of every message is checked.
     */
    @Test
    void gatheredSendsTakeTheirBodyWhenWrittenAndCompleteAfterIt() throws Exception {
        int messages = 256; // 16 MiB: more than the loopback socket buffers hold
        int headLen = 16;
        int bodyLen = MAX_MSG - headLen;
        try (Pair p = new Pair(options(MAX_MSG))) {
            ByteBuffer heads = ByteBuffer.allocateDirect(messages * headLen);
            ByteBuffer body = ByteBuffer.allocateDirect(bodyLen);
            MemoryRegion headRegion = p.client.register(heads);
            MemoryRegion bodyRegion = p.client.register(body);
            MemoryRegion recvRegion = p.server.register(ByteBuffer.allocateDirect(MAX_MSG));
            long receiverStarts = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(500);
            CompletableFuture<Void> receiver = CompletableFuture.runAsync(() -> {
                try {
                    Thread.sleep(500);
                    for (int i = 0; i < messages; i++) {
                        p.server.postRecv(i, recvRegion, 0, MAX_MSG);
                        Completion c = p.serverEvents.next();
                        assertEquals(new Completion(Opcode.RECV, i, MAX_MSG, WcStatus.SUCCESS), c);
                        for (int j = 0; j < MAX_MSG; j++) {
                            byte want = j < headLen ? (byte) (i + j) : gathered(i, j - headLen);
                            if (recvRegion.buffer().get(j) != want) {
                                throw new AssertionError("message " + i + " byte " + j);
                            }
                        }
                    }
                } catch (IOException | InterruptedException e) {
                    throw new RuntimeException(e);
                }
            });
            int lateCompletions = 0;
            for (int i = 0; i < messages; i++) {
                for (int j = 0; j < headLen; j++) {
                    heads.put(i * headLen + j, (byte) (i + j));
                }
                for (int j = 0; j < bodyLen; j++) {
                    body.put(j, gathered(i, j));
                }
                p.client.postSendGather(i, headRegion, i * headLen, headLen, bodyRegion, 0, bodyLen);
                assertEquals(new Completion(Opcode.SEND, i, MAX_MSG, WcStatus.SUCCESS), p.clientEvents.next());
                if (System.nanoTime() > receiverStarts) {
                    lateCompletions++;
                }
            }
            receiver.get(WAIT_SECONDS, TimeUnit.SECONDS);
            assertTrue(lateCompletions > 0, "the socket never filled: the test proved nothing");
            assertThrows(FabricException.class, () -> p.client.postSendGather(0, headRegion, 0, headLen, bodyRegion,
                    1, bodyLen), "a body range outside its region");
        }
    }

    private static byte gathered(int message, int index) {
        return (byte) (message * 13 + index + (index >>> 9));
    }

    /** With no receive posted the message is held (RNR retry), not dropped, and delivered once one is posted. */
    @Test
    void messagesAreHeldUntilReceivesArePosted() throws Exception {
        int messages = 50;
        try (Pair p = new Pair(options(4096))) {
            ByteBuffer sendMem = ByteBuffer.allocateDirect(messages * 4096);
            MemoryRegion sendRegion = p.client.register(sendMem);
            MemoryRegion recvRegion = p.server.register(ByteBuffer.allocateDirect(4096));
            for (int i = 0; i < messages; i++) {
                int size = 100 + i * 31;
                for (int j = 0; j < size; j++) {
                    sendMem.put(i * 4096 + j, (byte) (i * 7 + j));
                }
                p.client.postSend(i, sendRegion, i * 4096, size);
            }
            for (int i = 0; i < messages; i++) { // sends complete: the bytes are on the wire, held by the receiver
                assertEquals(new Completion(Opcode.SEND, i, 100 + i * 31, WcStatus.SUCCESS), p.clientEvents.next());
            }
            assertNull(p.serverEvents.completions.poll(300, TimeUnit.MILLISECONDS), "nothing without a receive");

            for (int i = 0; i < messages; i++) { // one receive at a time, late
                p.server.postRecv(1000 + i, recvRegion, 0, 4096);
                Completion c = p.serverEvents.next();
                assertEquals(new Completion(Opcode.RECV, 1000 + i, 100 + i * 31, WcStatus.SUCCESS), c);
                for (int j = 0; j < c.byteLen(); j++) {
                    assertEquals((byte) (i * 7 + j), recvRegion.buffer().get(j), "message " + i + " byte " + j);
                }
                if (i % 10 == 0) {
                    Thread.sleep(20);
                }
            }
            assertTrue(p.server.isOpen());
        }
    }

    @Test
    void sendLargerThanPostedReceiveFailsWithLocalLengthError() throws Exception {
        try (Pair p = new Pair(options(4096))) {
            MemoryRegion sendRegion = p.client.register(ByteBuffer.allocateDirect(4096));
            MemoryRegion recvRegion = p.server.register(ByteBuffer.allocateDirect(4096));
            p.server.postRecv(1, recvRegion, 0, 100);
            p.server.postRecv(2, recvRegion, 100, 3000);
            p.client.postSend(7, sendRegion, 0, 200);

            assertEquals(new Completion(Opcode.RECV, 1, 0, WcStatus.LOC_LEN_ERR), p.serverEvents.next());
            assertEquals(new Completion(Opcode.RECV, 2, 0, WcStatus.FLUSH_ERR), p.serverEvents.next());
            IOException serverCause = p.serverEvents.awaitDisconnect();
            FabricException fe = assertInstanceOf(FabricException.class, serverCause);
            assertEquals(WcStatus.LOC_LEN_ERR, fe.status());
            assertTrue(fe.getMessage().contains("200"), fe.getMessage());
            assertFalse(p.server.isOpen());

            IOException clientCause = p.clientEvents.awaitDisconnect();
            assertNotNull(clientCause, "the peer sees a broken connection");
            assertFalse(p.client.isOpen());
            p.serverEvents.assertSingleDisconnect();
            p.clientEvents.assertSingleDisconnect();
        }
    }

    @Test
    void postsAreValidatedLocally() throws Exception {
        FabricOptions small = new FabricOptions(1000, 8, 2, 5_000, 5_000);
        try (Pair p = new Pair(options(4096), small, new TcpTestSupport.Recorder(), new TcpTestSupport.Recorder())) {
            assertThrows(IllegalArgumentException.class, () -> p.client.register(ByteBuffer.allocate(64)));

            ByteBuffer mem = ByteBuffer.allocateDirect(4096).position(1000).limit(3000);
            MemoryRegion r = p.client.register(mem);
            assertEquals(2000, r.length());
            assertEquals(0, r.buffer().position());
            assertEquals(2000, r.buffer().capacity());
            assertEquals(r.lkey(), r.rkey());

            FabricException range = assertThrows(FabricException.class, () -> p.client.postSend(1, r, 1500, 501));
            assertEquals(WcStatus.LOC_PROT_ERR, range.status());
            assertThrows(FabricException.class, () -> p.client.postRecv(1, r, -1, 10));
            assertThrows(FabricException.class, () -> p.client.postRead(1, r, 0, 2001, 1L << 32, 0));

            MemoryRegion foreign = p.server.register(ByteBuffer.allocateDirect(64));
            FabricException notMine = assertThrows(FabricException.class, () -> p.client.postSend(1, foreign, 0, 8));
            assertEquals(WcStatus.LOC_PROT_ERR, notMine.status());

            FabricException tooBig = assertThrows(FabricException.class, () -> p.client.postSend(1, r, 0, 1001));
            assertEquals(WcStatus.LOC_LEN_ERR, tooBig.status(), "the server announced maxMessageSize 1000");

            p.client.deregister(r);
            p.client.deregister(r); // idempotent
            assertThrows(FabricException.class, () -> p.client.postSend(1, r, 0, 8));

            // maxRegions = 2 on the server
            p.server.register(ByteBuffer.allocateDirect(8));
            assertThrows(IOException.class, () -> p.server.register(ByteBuffer.allocateDirect(8)));
            assertTrue(p.client.isOpen(), "local validation errors do not break the connection");
            assertNull(p.clientEvents.completions.poll(100, TimeUnit.MILLISECONDS));
        }
    }
}
