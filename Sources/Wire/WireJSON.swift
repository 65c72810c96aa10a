import Foundation

/// The JSON conventions of every body the daemon publishes and every control reply:
/// keys sorted, slashes not escaped, non-finite numbers as the strings "nan", "inf"
/// and "-inf" (a poisoned model must still be described, not fail to encode).
public enum WireJSON {
    public static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }()

    public static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }()

    /// The body as bytes; a value that cannot be encoded becomes an `ok: false` object.
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        (try? Array(encoder.encode(value))) ?? Array(#"{"ok":false,"error":"internal encoding failure"}"#.utf8)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try decoder.decode(type, from: Data(bytes))
    }
}
