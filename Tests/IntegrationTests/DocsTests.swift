import Foundation
import Testing

/// The documentation is a contract: every relative link and anchor in README.md and
/// docs/ resolves inside the repository, and no document, script or source names a
/// file outside it.
struct DocsTests {
    static let root = ExampleConfigTests.root

    static var documents: [URL] {
        let docs = root.appendingPathComponent("docs")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: docs.path)) ?? []
        return [root.appendingPathComponent("README.md")]
            + names.filter { $0.hasSuffix(".md") }.sorted().map { docs.appendingPathComponent($0) }
    }

    /// GitHub's anchor for a heading: lower case, punctuation other than '-' and '_'
    /// dropped, spaces to '-'.
    static func slug(_ heading: String) -> String {
        var out = ""
        for ch in heading.lowercased() {
            if ch == " " { out.append("-") } else if ch.isLetter || ch.isNumber || ch == "-" || ch == "_" { out.append(ch) }
        }
        return out
    }

    static func anchors(in file: URL) -> Set<String> {
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        var inFence = false
        var out: Set<String> = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inFence.toggle(); continue }
            guard !inFence, line.hasPrefix("#") else { continue }
            out.insert(slug(String(line.drop { $0 == "#" }).trimmingCharacters(in: .whitespaces)))
        }
        return out
    }

    @Test func everyRelativeLinkAndAnchorResolves() throws {
        #expect(Self.documents.count >= 12, "README.md and the manual in docs/")
        let link = try Regex(#"\]\(([^)\s]+)\)"#)
        var problems: [String] = []
        for doc in Self.documents {
            let text = try String(contentsOf: doc, encoding: .utf8)
            for match in text.matches(of: link) {
                let target = String(text[match.range].dropFirst(2).dropLast())
                if target.hasPrefix("http://") || target.hasPrefix("https://") || target.hasPrefix("mailto:") { continue }
                let parts = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                let file = parts[0].isEmpty ? doc : doc.deletingLastPathComponent().appendingPathComponent(parts[0]).standardizedFileURL
                let name = "\(doc.lastPathComponent): \(target)"
                guard file.path.hasPrefix(Self.root.standardizedFileURL.path) else { problems.append("\(name) leaves the repository"); continue }
                guard FileManager.default.fileExists(atPath: file.path) else { problems.append("\(name) does not exist"); continue }
                if parts.count == 2, !Self.anchors(in: file).contains(parts[1]) {
                    problems.append("\(name): no heading with anchor #\(parts[1])")
                }
            }
        }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }

    /// No file names a file outside the repository: a relative path that climbs above
    /// the repository's root from where it is written or names nothing in it, an
    /// absolute path into the workspace around it, or an upper-case markdown file
    /// (README.md style) that the repository does not have.
    @Test func nothingNamesAFileOutsideTheRepository() throws {
        let dirs = ["Sources", "Tests", "docs", "bench", "scripts", "config", "systemd", "examples", "clients", "deploy", "Benchmarks/Benchmarks", ".ci"]
        var files = [Self.root.appendingPathComponent("README.md"), Self.root.appendingPathComponent("Package.swift")]
        for dir in dirs {
            guard let e = FileManager.default.enumerator(at: Self.root.appendingPathComponent(dir), includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in e {
                if url.path.contains("/.venv") || url.path.contains("/.build") || url.path.contains("__pycache__") { e.skipDescendants(); continue }
                if ["swift", "md", "py", "sh", "yaml", "yml", "service", "toml", "json", "txt", "c", "h", "modulemap", "csv", ""].contains(url.pathExtension),
                   !url.hasDirectoryPath { files.append(url) }
            }
        }
        let ownNames = Set(files.map(\.lastPathComponent))
        let climbing = try NSRegularExpression(pattern: #"(?<![A-Za-z0-9_/.])((?:\.\./)+)[A-Za-z0-9_][A-Za-z0-9_./@-]*"#)
        let absolute = try NSRegularExpression(pattern: #"(?<![A-Za-z0-9_.])/work/[A-Za-z0-9_]"#)
        let markdown = try NSRegularExpression(pattern: #"(?<![A-Za-z0-9_./-])[A-Z][A-Z0-9_-]*\.md\b"#)
        var hits: [String] = []
        for file in files {
            guard let text = try? String(contentsOf: file, encoding: .utf8) else { continue }
            let relative = String(file.path.dropFirst(Self.root.path.count + 1))
            // How many directories the file sits below the root: the most a relative path may climb.
            let depth = relative.split(separator: "/").count - 1
            let range = NSRange(text.startIndex..., in: text)
            for m in climbing.matches(in: text, range: range) {
                var path = (text as NSString).substring(with: m.range)
                while path.hasSuffix(".") || path.hasSuffix("/") { path.removeLast() }   // end of a sentence
                let ups = (text as NSString).substring(with: m.range(at: 1)).count / 3
                // A path inside the repository whose directory is not there names something else
                // (an output file need not exist yet; its directory must).
                let directory = file.deletingLastPathComponent().appendingPathComponent(path).standardized.deletingLastPathComponent()
                if ups > depth {
                    hits.append("\(relative) climbs out: \(path)")
                } else if !FileManager.default.fileExists(atPath: directory.path) {
                    hits.append("\(relative) names \(path), whose directory is not in the repository")
                }
            }
            for m in absolute.matches(in: text, range: range) {
                hits.append("\(relative) names an absolute path: \((text as NSString).substring(with: m.range))")
            }
            for m in markdown.matches(in: text, range: range) where !ownNames.contains((text as NSString).substring(with: m.range)) {
                hits.append("\(relative) names \((text as NSString).substring(with: m.range)), not in the repository")
            }
        }
        #expect(hits.isEmpty, "\(hits.joined(separator: "\n"))")
        #expect(files.count > 100, "the scan found the repository's files")
    }

    @Test func readmeIsAFrontDoor() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.split(separator: "\n", omittingEmptySubsequences: false).count <= 250)
        for doc in ["protocol", "configuration", "cli", "operations", "alerts", "algorithm", "scale-out", "security", "development",
                    "quality", "performance", "architecture"] {
            #expect(readme.contains("(docs/\(doc).md)"), "README's map lacks docs/\(doc).md")
        }
    }

    /// One room per responsibility: no source file grows past 500 lines.
    @Test func noSourceFileIsOver500Lines() throws {
        let sources = Self.root.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)?
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" } ?? []
        #expect(files.count > 50)
        for file in files {
            let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).count
            #expect(lines <= 500, "\(file.path) has \(lines) lines")
        }
    }
}
