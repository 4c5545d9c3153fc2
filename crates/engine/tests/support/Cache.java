package com.example.cache;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A small LRU cache with a fixed capacity.
 */
public class Cache<K, V> {
    private final int capacity;
    private final Map<K, Node<K, V>> map = new HashMap<>();
    private final ReentrantLock lock = new ReentrantLock();
    private Node<K, V> head;
    private Node<K, V> tail;

    public Cache(int capacity) {
        if (capacity <= 0) {
            throw new IllegalArgumentException("capacity must be positive");
        }
        this.capacity = capacity;
    }

    /** Returns the value for key, or null, and marks it as recently used. */
    public V get(K key) {
        lock.lock();
        try {
            Node<K, V> n = map.get(key);
            if (n == null) {
                return null;
            }
            moveToFront(n);
            return n.value;
        } finally {
            lock.unlock();
        }
    }

    /** Inserts or replaces a value, evicting the least recently used entry when full. */
    public void put(K key, V value) {
        lock.lock();
        try {
            Node<K, V> n = map.get(key);
            if (n != null) {
                n.value = value;
                moveToFront(n);
                return;
            }
            if (map.size() == capacity) {
                map.remove(tail.key);
                unlink(tail);
            }
            n = new Node<>(key, value);
            map.put(key, n);
            pushFront(n);
        } finally {
            lock.unlock();
        }
    }

    private void moveToFront(Node<K, V> n) {
        unlink(n);
        pushFront(n);
    }

    private void unlink(Node<K, V> n) {
        if (n.prev != null) n.prev.next = n.next; else head = n.next;
        if (n.next != null) n.next.prev = n.prev; else tail = n.prev;
        n.prev = n.next = null;
    }

    private void pushFront(Node<K, V> n) {
        n.next = head;
        if (head != null) head.prev = n;
        head = n;
        if (tail == null) tail = n;
    }

    private static final class Node<K, V> {
        final K key;
        V value;
        Node<K, V> prev, next;
        Node(K key, V value) { this.key = key; this.value = value; }
    }
}
