/*
 * Copyright (c) 2026 stacklens test fixture. Licensed under the Apache License 2.0.
 */
package org.example.ring;

import java.util.Arrays;

/**
 * A fixed-size ring buffer that overwrites its oldest element when full.
 * It isn't thread-safe: callers synchronise, as "ArrayDeque" users do.
 *
 * @param <E> the element type
 */
public final class Ring<E> {
    private final Object[] items; // backing store, never resized
    private int head, size;

    /** Creates a ring holding at most {@code capacity} elements. */
    public Ring(int capacity) {
        if (capacity <= 0) throw new IllegalArgumentException("capacity: " + capacity);
        items = new Object[capacity];
    }

    /*
       A plain block comment without leading stars,
       whose lines look like code: head = (head + 1) % n;
    */
    public void add(E e) {
        items[(head + size) % items.length] = e;
        if (size < items.length) size++; else head = (head + 1) % items.length;
    }

    @SuppressWarnings("unchecked")
    public E get(int i) {
        return (E) items[(head + i) % items.length]; /* cast is safe: only E is stored */
    }

    @Override
    public String toString() {
        String text = """
            Ring of "%d" items, it's %s
            """.formatted(size, Arrays.toString(items));
        return text;
    }
}
