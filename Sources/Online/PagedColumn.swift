/// A growable table column kept in fixed-size pages of rows (each row `stride`
/// elements). A copy shares the pages, and a later write copies only the page it
/// touches: the pending store can be frozen for a checkpoint written on another thread
/// while the event loop goes on changing it a page at a time, instead of copying a
/// million-row table in one go on its next insert. Rows can also leave from the front
/// (a FIFO), freeing each page once it is used up. As a collection it holds each row's
/// first element.
struct PagedColumn<Element>: Sendable, RandomAccessCollection where Element: Sendable {
    /// Elements per row.
    let stride: Int
    private var pages: [[Element]] = []
    /// log2 of the rows per page.
    private let shift: Int
    private let mask: Int
    /// Where row 0 sits in the first page.
    private var start = 0
    /// Rows stored.
    private(set) var count = 0

    /// Pages of 2^`pageShift` rows (16,384 by default: 64 KiB of floats per element of a row).
    init(stride: Int = 1, pageShift: Int = 14) {
        precondition(stride >= 1)
        self.stride = stride
        shift = pageShift
        mask = (1 << pageShift) - 1
    }

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    /// Element `k` of `row`.
    subscript(row: Int, k: Int) -> Element {
        get {
            assert(row >= 0 && row < count && k >= 0 && k < stride, "PagedColumn index out of range")
            let p = start &+ row
            return pages[p &>> shift][(p & mask) &* stride &+ k]
        }
        set {
            assert(row >= 0 && row < count && k >= 0 && k < stride, "PagedColumn index out of range")
            let p = start &+ row
            pages[p &>> shift][(p & mask) &* stride &+ k] = newValue
        }
    }

    /// The first element of `row`.
    subscript(row: Int) -> Element {
        get { self[row, 0] }
        set { self[row, 0] = newValue }
    }

    /// Appends a row of `stride` copies of `element`.
    mutating func append(_ element: Element) {
        let end = start &+ count
        if end & mask == 0 {
            var page: [Element] = []
            page.reserveCapacity((mask + 1) * stride)   // never grows, so appends never reallocate it
            pages.append(page)
        }
        let p = end &>> shift
        if stride == 1 {
            pages[p].append(element)
        } else {
            pages[p].append(contentsOf: repeatElement(element, count: stride))
        }
        count += 1
    }

    /// The elements of `row`, writable in place (one copy-on-write check for the row).
    mutating func withMutableRow<R>(_ row: Int, _ body: (UnsafeMutableBufferPointer<Element>) -> R) -> R {
        assert(row >= 0 && row < count, "PagedColumn index out of range")
        let p = start &+ row
        let base = (p & mask) &* stride
        return pages[p &>> shift].withUnsafeMutableBufferPointer { page in
            body(UnsafeMutableBufferPointer(rebasing: page[base..<(base + stride)]))
        }
    }

    /// The elements of `row`.
    func withRow<R>(_ row: Int, _ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        assert(row >= 0 && row < count, "PagedColumn index out of range")
        let p = start &+ row
        let base = (p & mask) &* stride
        return try pages[p &>> shift].withUnsafeBufferPointer { page in
            try body(UnsafeBufferPointer(rebasing: page[base..<(base + stride)]))
        }
    }

    /// Removes and returns the first row's first element; nil when empty.
    mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let first = pages[0][start &* stride]
        start += 1
        count -= 1
        if count == 0 {
            pages.removeAll()
            start = 0
        } else if start > mask {
            // The first page is used up: let it go.
            pages.removeFirst()
            start = 0
        }
        return first
    }
}
