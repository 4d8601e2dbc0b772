// Produces the golden files the reports crate is checked against, with the
// Java reference implementation (Debian's libhdrhistogram-java 2.1.11):
//   javac -cp /usr/share/java/hdrhistogram.jar -d /tmp Golden.java
//   java -cp /usr/share/java/hdrhistogram.jar:/tmp Golden > fixed.hgrm
import org.HdrHistogram.Histogram;

public class Golden {
    public static void main(String[] args) {
        Histogram h = new Histogram(1, 60_000_000_000L, 3);
        for (long us = 1; us <= 10_000; us++) {
            h.recordValue(us * 1000);
        }
        h.recordValueWithCount(250_000_000L, 3);
        h.recordValue(1_000_000_000L);
        h.outputPercentileDistribution(System.out, 5, 1e6);
    }
}
